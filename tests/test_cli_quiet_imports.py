"""`lssgen` commands do not print transformers' torchvision fallback notes (issue 15), and hide
nothing else."""

import subprocess
import sys

NOTE = "requires torchvision (not installed); falling back to"

# A stand-in command that imports what every model command imports (a Diffusers pipeline module,
# which asks transformers for CLIPImageProcessor and SiglipImageProcessor), then logs another
# warning on the same logger.
COMMAND = """
import logging, sys, types
command = types.ModuleType("stand_in_command")
command.add_arguments = lambda parser: None
def run(args):
    import diffusers.pipelines.flux.pipeline_flux  # noqa: F401
    import transformers
    transformers.CLIPImageProcessor, transformers.SiglipImageProcessor
    logging.getLogger("transformers.utils.import_utils").warning("another note")
    return 0
command.run = run
sys.modules["stand_in_command"] = command
from lssgen.cli import COMMANDS, main
COMMANDS["stand-in"] = ("stand_in_command", "imports a pipeline")
sys.exit(main(["stand-in"]))
"""

PLAIN = """
import transformers
transformers.CLIPImageProcessor, transformers.SiglipImageProcessor
"""


def stderr_of(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stderr


def test_the_torchvision_notes_print_outside_a_command():
    # If transformers stops printing them, the filter has nothing left to do: this says so.
    err = stderr_of(PLAIN)
    assert "`CLIPImageProcessor` " + NOTE in err and "`SiglipImageProcessor` " + NOTE in err


def test_a_command_hides_them_and_shows_every_other_message():
    err = stderr_of(COMMAND)
    assert NOTE not in err
    assert "another note" in err
