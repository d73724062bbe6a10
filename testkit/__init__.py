"""What the tests and the benchmarks share, outside the product: the one Python protocol client
(client.py) and the synthetic images (images.py)."""
