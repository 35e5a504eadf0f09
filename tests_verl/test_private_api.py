"""Every private verl name dgpo touches still exists as read (dgpo.integrations.private_api.VERL).

The losses plugin and the CPU shim; the TRL and transformers names are checked in the main environment
(tests/test_private_api.py). Also: importing the plugin replaces no verl attribute (it only registers losses).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest

from dgpo.integrations.private_api import VERL, Engine, PrivateName


@pytest.mark.parametrize("entry", VERL.names, ids=[".".join(e.dotted.split(".")[-2:]) for e in VERL.names])
def test_every_name_is_where_it_was_read(entry: PrivateName):
    problems = VERL.problems(entry)
    assert not problems, "\n".join(problems)


def test_the_plugin_loss_has_verls_policy_loss_signature():
    """verl calls every registered loss by keyword: ours takes exactly the parameters of verl's vanilla."""
    from verl.trainer.ppo import core_algos

    import dgpo.integrations.verl  # noqa: F401  (registers the losses)

    (vanilla,) = [e for e in VERL.names if e.dotted.endswith(".compute_policy_loss_vanilla")]
    for mode in ("dgpo", "dgpo_grpo", "dgpo_gspo"):
        assert tuple(inspect.signature(core_algos.get_policy_loss_fn(mode)).parameters) == vanilla.parameters


def test_a_moved_name_fails_with_the_recheck_line():
    engine = Engine("verl", "0.9.1", ())
    (line,) = engine.problems(PrivateName("verl.trainer.ppo.core_algos.NO_SUCH_REGISTRY", "test"))
    assert line.startswith(
        "re-check verl.trainer.ppo.core_algos.NO_SUCH_REGISTRY after upgrading verl (read from 0.9.1): AttributeError"
    ), line


#: Every attribute of every verl module loaded before the plugin, as ids; run again after importing the plugin.
SNAPSHOT = """
import json, sys
import verl, verl.trainer.ppo.core_algos, verl.trainer.ppo.rollout_corr_helper, verl.workers.config.actor
def snapshot():
    return {f"{name}.{attr}": id(value) for name, module in list(sys.modules.items())
            if name.startswith("verl") and module is not None for attr, value in list(vars(module).items())}
before = snapshot()
registry = dict(verl.trainer.ppo.core_algos.POLICY_LOSS_REGISTRY)
import dgpo.integrations.verl
after = snapshot()
added = sorted(set(verl.trainer.ppo.core_algos.POLICY_LOSS_REGISTRY) - set(registry))
print(json.dumps({"replaced": sorted(k for k in before if after.get(k) != before[k]), "added": added}))
"""


def test_importing_the_plugin_replaces_no_verl_attribute():
    """No monkeypatch at import (e.g. of rollout_corr_helper.apply_bypass_mode): only POLICY_LOSS_REGISTRY grows."""
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": "none", "VERL_USE_EXTERNAL_MODULES": ""}
    out = subprocess.run([sys.executable, "-c", SNAPSHOT], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replaced"] == []
    assert "dgpo" in result["added"] and "dgpo_grpo" in result["added"]
