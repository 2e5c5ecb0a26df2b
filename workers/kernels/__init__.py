"""Pure governance kernels (DESIGN §6): `state, event -> state, outputs`, no I/O, no clock."""
