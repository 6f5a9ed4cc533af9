/* A module for test_library_pin.cpp: something to load, unload and pin. */
int aviary_pin_probe_value(void) { return 42; }
