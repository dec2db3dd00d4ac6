"""`python -m gan_compress ...` is the `gan-compress` command."""

from gan_compress.cli import console_main

if __name__ == "__main__":
    console_main()
