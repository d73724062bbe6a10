"""Demo code (not product): synthetic ID-photo variants and the contact sheet."""
