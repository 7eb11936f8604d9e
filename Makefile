# The two commands of the README. Both install what they need first (scripts/bootstrap.sh).
.PHONY: demo test setup

setup:
	bash scripts/bootstrap.sh

demo: setup
	.venv/bin/pang demo

test: setup
	.venv/bin/python -m pytest
