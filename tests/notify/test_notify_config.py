"""A bad notify configuration: one line naming the file, the line and the key; exit 1; never
a traceback, and nothing delivered."""

from __future__ import annotations

import pytest
from notify_support import SECRET, run_cli

GOOD_ENDPOINT = f'[[endpoint]]\nname = "audit"\nurl = "http://127.0.0.1:9/x"\nsecret = "{SECRET}"\n'

CASES = [
    ("not TOML", 'timeout = 15\n[[endpoint]\nname = "x"\n', 2, "not valid TOML"),
    ("unknown setting", "timeout = 15\nretries = 3\n" + GOOD_ENDPOINT, 2,
     "unknown setting 'retries'"),
    ("negative timeout", "backoff_max = 5\ntimeout = -1\n" + GOOD_ENDPOINT, 2,
     "timeout must be a positive number"),
    ("secret without prefix",
     '[[endpoint]]\nname = "audit"\nurl = "http://127.0.0.1:9/x"\nsecret = "hunter2"\n', 4,
     "a secret starts with whsec_"),
    ("secret not base64",
     '[[endpoint]]\nname = "audit"\nurl = "http://h/x"\n\nsecrets = ["whsec_%%%"]\n', 5,
     "not base64"),
    ("url missing", GOOD_ENDPOINT + '\n[[endpoint]]\nname = "two"\nsecret = "x"\n', 6,
     "url must be an http:// or https:// address"),
    ("unknown key in a hook", GOOD_ENDPOINT + '[[hook]]\nname = "h"\ncmd = "true"\n', 7,
     "unknown key 'cmd'"),
    ("same name twice", GOOD_ENDPOINT + '[[hook]]\nname = "audit"\ncommand = "true"\n', 6,
     "name 'audit' is used twice"),
    ("nothing to deliver to", 'timeout = 3\n', None, "nothing to deliver to"),
]


@pytest.mark.parametrize(("text", "line", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_bad_configuration_is_one_line_with_file_line_and_key(tmp_path, data_file, text,
                                                                 line, reason):
    config = tmp_path / "notify.toml"
    config.write_text(text)
    done = run_cli(data_file, "notify", "--config", str(config))
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    where = f"{config}:{line}:" if line is not None else f"{config}: "
    assert done.stderr.startswith(f"modelboard: {where}") or \
        done.stderr.startswith(where), done.stderr
    assert reason in done.stderr
    assert "Traceback" not in done.stderr
    assert not data_file.parent.exists() or not any(
        p.name.startswith("model_selections.notify") for p in data_file.parent.iterdir())


def test_a_missing_configuration_file_is_one_line(tmp_path, data_file):
    done = run_cli(data_file, "notify", "--config", str(tmp_path / "nope.toml"))
    assert done.returncode == 1
    assert done.stderr.strip().endswith("nope.toml: no such notify configuration file")
    assert len(done.stderr.splitlines()) == 1


WITHOUT_HTTPX = """
import sys
sys.modules["httpx"] = None  # what an install without the notify extra looks like
from modelboard.core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_endpoints_without_the_notify_extra_say_what_to_install(tmp_path, data_file):
    import subprocess
    import sys

    config = tmp_path / "notify.toml"
    config.write_text(GOOD_ENDPOINT)
    done = subprocess.run([sys.executable, "-c", WITHOUT_HTTPX, "--file", str(data_file),
                           "notify", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("webhook endpoints need httpx: "
                                        "pip install 'modelboard[notify]'"), done.stderr
    assert len(done.stderr.splitlines()) == 1
