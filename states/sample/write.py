"""Renew the sample import files beside the sample roster: `python -m states.sample.write`."""

from states.sample import write_sample_files

if __name__ == "__main__":
    for written in write_sample_files():
        print(written)
