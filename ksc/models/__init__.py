"""The networks a .ksc file can hold: their shape, torch modules for fitting and numpy runtimes for decoding."""
