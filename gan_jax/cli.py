"""Helpers shared by the command lines (`gan_jax.commands`: train, sample, evaluate, ...).

`--config` takes a config file or the name of a config that ships inside gan_jax, each with an
optional preset after a colon: `--config=configs/dcgan.py:celeba` (a path, as in a checkout)
or `--config=dcgan:celeba` (a name, from any folder once gan_jax is installed). Every command
that takes a config defines it with `define_config_flag`, which resolves the name here.
"""

import os
import re
import sys

from absl import flags

# The flags that define_config_flag defines belong to the command that calls it (its --help).
flags.disclaim_key_flags()

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fail(message: str, code: int = 2):
    """Prints one `error:` line and exits with `code`: how a user's mistake ends.

    Once JAX is loaded, a failed orbax restore leaves background threads that print "Event
    loop is closed" tracebacks at interpreter shutdown. Every output has been written (and
    renamed into place) before this is called, so the process leaves at once instead.
    """
    print(f"error: {message}", file=sys.stderr)
    if "jax" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


class ConfigNameError(ValueError):
    """`--config` names neither a file nor a packaged config; the message lists the names."""


def packaged_configs() -> list[str]:
    """The names `--config=NAME` accepts: gan_jax/configs/NAME.py files with a get_config."""
    names = []
    for entry in sorted(os.listdir(CONFIGS_DIR)):
        name, ext = os.path.splitext(entry)
        if ext != ".py" or not _NAME.fullmatch(name) or name.startswith("_"):
            continue
        with open(os.path.join(CONFIGS_DIR, entry), encoding="utf-8") as f:
            if re.search(r"^def get_config\(", f.read(), re.MULTILINE):
                names.append(name)
    return names


def resolve_config(spec: str) -> str:
    """`--config`'s value as ml_collections loads it: a config file path, then `:preset`.

    `PATH[:preset]` where PATH is an existing file, or anything that is not a bare name
    (`configs/dcgan.py`, `my.py`), is returned as it is: a missing file stays the file
    loader's error. `NAME[:preset]` where NAME is not a file becomes the packaged
    `gan_jax/configs/NAME.py[:preset]`; a NAME that no packaged config has raises
    ConfigNameError listing the names.
    """
    path, colon, preset = spec.partition(":")
    if os.path.isfile(path) or not _NAME.fullmatch(path):
        return spec
    names = packaged_configs()
    if path not in names:
        example = "dcgan:celeba" if "dcgan" in names else "NAME:PRESET"
        raise ConfigNameError(
            f"--config={spec}: '{path}' is neither a config file nor a packaged config "
            f"(packaged configs: {', '.join(names)}; a preset follows a colon, e.g. {example})"
        )
    return os.path.join(CONFIGS_DIR, f"{path}.py") + colon + preset


class _ResolvingParser(flags.ArgumentParser):
    """ml_collections' config file parser, after `resolve_config`."""

    def __init__(self, inner):
        self._inner = inner

    def parse(self, argument):
        return self._inner.parse(resolve_config(argument))

    def flag_type(self):
        return self._inner.flag_type()


def define_config_flag(name: str = "config", help_string: str | None = None, **kwargs):
    """Defines `--NAME` (a config file or packaged name, `:preset`, `--NAME.key=value`
    overrides) for the calling command: ml_collections' `DEFINE_config_file`, whose value
    goes through `resolve_config`. Returns its flag holder."""
    from ml_collections import config_flags  # noqa: PLC0415

    if help_string is None:
        help_string = (
            f"A packaged config ({', '.join(packaged_configs())}) or a config file, then "
            "':preset': e.g. dcgan:celeba or configs/dcgan.py:celeba. Override any key "
            f"with --{name}.key=value."
        )
    holder = config_flags.DEFINE_config_file(name, None, help_string, **kwargs)
    flag = flags.FLAGS[name]
    flag.parser = _ResolvingParser(flag.parser)
    return holder


def parse_flags(argv):
    """Parses flags; a bad flag, config name or config override is one `error:` line on
    stderr (exit code 2), not a traceback. For `app.run(main, flags_parser=parse_flags)`."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        if isinstance(e.__context__, ConfigNameError):
            message = str(e.__context__)
        else:
            # config_flags folds the config file's own traceback into the message: keep the
            # end.
            last = str(e).strip().splitlines()[-1].strip()
            prefixes = ("ValueError", "KeyError")
            message = last.split(": ", 1)[1] if last.startswith(prefixes) else last
    except (AttributeError, KeyError) as e:
        keys = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", str(e))
        detail = f"'{keys[0]}'" if keys else str(e)
        hint = re.search(r'Did you mean "([^"]+)"', str(e))
        detail += f" (did you mean '{hint.group(1)}'?)" if hint else ""
        message = f"unknown config key in an override: {detail}"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
