#!/bin/sh
# pushgod's command: the packaged venv's python. -P keeps the working directory out of
# sys.path, so a pushgod/ folder where the command is run cannot stand in for the real one.
exec /opt/pushgod/bin/python3 -P -m pushgod "$@"
