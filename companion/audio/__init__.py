"""Audio in and out: files, microphones, speakers, and conversions between them."""
