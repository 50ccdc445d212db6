"""The function app's logic: routing, conversations, storage, HTTP shapes. See README for the module map."""
