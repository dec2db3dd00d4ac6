"""Codecs (one per file) and the discriminator. Tensors in, tensors and NamedTuples out."""
