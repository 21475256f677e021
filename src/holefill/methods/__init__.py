"""holefill\x27s built-in inpainting methods, one file each."""
