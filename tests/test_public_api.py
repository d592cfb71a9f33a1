import subprocess
import sys

import mtrl


def test_every_public_name_resolves() -> None:
    missing = [name for name in mtrl.__all__ if not hasattr(mtrl, name)]
    assert missing == []


def test_importing_mtrl_does_not_import_torch_or_simulators() -> None:
    code = (
        "import sys, mtrl; mtrl.get_suite('tiny'); "
        "heavy = ('torch', 'ale_py', 'dm_control', 'textworld', 'jericho', 'adventure', 'spacy', "
        "'ray'); print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
