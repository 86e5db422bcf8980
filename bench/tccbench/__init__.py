"""The tcc benchmark: scenarios, samplers and the report.

bench/run.sh makes the cluster and then runs this package with Debian's
python3 (``python3 -m tccbench``); see bench/README.md.
"""
