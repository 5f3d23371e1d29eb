"""adaptlab: fine-tune or prompt? Build both on your data, measure them, serve the winner."""

__version__ = "0.1.0"
