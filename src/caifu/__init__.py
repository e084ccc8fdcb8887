"""caifu (财富): the wealth-business data and engagement platform for securities brokers."""

__version__ = "0.1.0"
