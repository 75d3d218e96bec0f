"""Everything that touches the outside world. Importing a module here starts nothing."""
