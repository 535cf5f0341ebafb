"""Keeping other libraries' noise off the user's terminal, for the CLI and the Python API alike.

On every start, torchao (imported by transformers whenever it is installed)
reports the CUDA-only kernels it cannot load on a CPU machine, torch warns about
torchao's enum registration, and transformers prints a weight-loading bar and a
"load report" for every model. None of it concerns a user of ndogo, and an
error line of ndogo's own is lost among it. Library code may import this module:
it imports nothing of ndogo's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "huggingface_hub")


def quiet_imports() -> None:
    """Silence the import-time messages; cheap (imports nothing), so `import ndogo` does it."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_libraries() -> None:
    """Keep transformers' load reports, progress bars and warnings off the terminal (the CLI's setting).

    Offline, huggingface_hub logs a dozen "Retrying in 8s" lines before the one error
    line ndogo prints for a missing hub model or corpus; that line already says what to do.
    """
    import sys
    import warnings

    quiet_imports()
    warnings.filterwarnings("ignore", module="seqeval")
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    if "transformers" not in sys.modules:
        # Not imported yet: transformers reads these when it is, to the same effect. Importing it
        # here would put transformers (and its start-up seconds) into every command, `ndogo serve`
        # of an ONNX bundle included, which runs without torch or transformers.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' verbosity and progress bars turned down while a model loads, then put back.

    For the Python API (`ndogo.load`): the caller's own transformers settings outlive the call.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
