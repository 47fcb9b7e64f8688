"""The web console of support agents and operators, served by the app at /console."""
