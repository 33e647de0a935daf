"""Writes wine-initial.safetensors (the zero-initialised softmax model the coordinator starts from)."""

from pathlib import Path

from safetensors.numpy import save_file

from wine_model import initial_model

if __name__ == "__main__":
    path = Path(__file__).with_name("wine-initial.safetensors")
    save_file(initial_model(), str(path))
    print(path)
