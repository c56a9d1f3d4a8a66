import subprocess
import sys

import training.data


def test_every_public_name_resolves():
    assert set(training.data.__all__) == set(training.data._EXPORTS)
    for name in training.data.__all__:
        assert getattr(training.data, name) is not None


def test_import_is_cheap_and_torch_free():
    code = "import sys, training.data; training.data.build_ood_sets; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
