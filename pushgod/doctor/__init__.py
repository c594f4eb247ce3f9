"""`pushgod doctor`: checks of an installation that change nothing, each with its fix."""
