"""holefill's exception types. The CLI turns any of them into one line on stderr and exit code 2."""


class HolefillError(Exception):
    """Base class of every error holefill raises on purpose."""


class InputError(HolefillError, ValueError):
    """An image, a mask or an option the user gave cannot be used."""


class ImageTooLargeError(InputError):
    """An image exceeds the configured pixel limit (decompression-bomb guard)."""


class NothingToFillFromError(InputError):
    """The mask covers the whole image: there are no known pixels to fill from."""


class WeightsError(HolefillError):
    """Model weights are missing, corrupt or do not match the network."""


class UnknownMethodError(InputError, KeyError):
    """No inpainting method is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
