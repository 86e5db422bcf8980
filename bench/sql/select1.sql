-- S2 context: the bare SQL round trip of the same client.
SELECT 1;
