"""The store layer: locations → stores (bytes by key), and the I/O plumbing under them."""
