-- The extension installs and exposes its settings with their documented
-- defaults (README.md#installation, docs/settings.md).  The test cluster sets
-- tcc.database to 'tcc_test,tcc_test2' and the retry settings short
-- (test/run.sh): those rows show the test values, with boot_val giving the
-- documented default.
SELECT extname, extversion FROM pg_extension WHERE extname = 'tcc';

SELECT name, setting, unit, context, boot_val
  FROM pg_settings
 WHERE name LIKE 'tcc.%'
 ORDER BY name;

-- The tcc. prefix is reserved: unknown tcc.* settings are rejected.
SET tcc.nonexistent = 1;
