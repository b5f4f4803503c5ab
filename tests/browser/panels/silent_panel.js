// A module that loads but never defines its element (tests/browser/test_panels.py).
export const loaded = true;
