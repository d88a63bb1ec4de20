"""The kit's tooling: set-up and commands (kit.py), lab build, data generation, the demo, version
pins, the environment check and headless notebook execution. Notebooks never import from here."""
