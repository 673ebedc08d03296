import json

import pytest

import scalelab.cost_cache
from scalelab.arch.zoo import make_spec
from scalelab.cost import cost
from scalelab.cost_cache import cached_cost


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path))
    return tmp_path / "costs"


def _counting(monkeypatch):
    calls = []

    def counted(spec):
        calls.append(spec.name)
        return cost(spec)

    monkeypatch.setattr(scalelab.cost_cache, "cost", counted)
    return calls


def test_a_network_is_counted_once_whatever_its_name(cache, monkeypatch):
    calls = _counting(monkeypatch)
    spec = make_spec("baseline_convnet", width=0.25, resolution=16)
    first = cached_cost(spec)
    renamed = cached_cost(spec.__class__(**{**vars(spec), "name": "another-name"}))
    assert calls == [spec.name]
    assert (renamed.params, renamed.flops) == (first.params, first.flops) == (cost(spec).params, cost(spec).flops)
    assert len(list(cache.glob("*.json"))) == 1


def test_another_network_gets_its_own_entry(cache, monkeypatch):
    calls = _counting(monkeypatch)
    small, wider = make_spec("baseline_convnet", width=0.25), make_spec("baseline_convnet", width=0.5)
    assert cached_cost(small).flops < cached_cost(wider).flops
    assert len(calls) == 2 and len(list(cache.glob("*.json"))) == 2


@pytest.mark.parametrize("damage", ["", "{not json", json.dumps({"params": 1})])
def test_an_unreadable_entry_is_counted_again_and_rewritten(cache, monkeypatch, damage):
    spec = make_spec("baseline_convnet", width=0.25)
    truth = cached_cost(spec)
    (entry,) = cache.glob("*.json")
    entry.write_text(damage)
    calls = _counting(monkeypatch)
    assert cached_cost(spec).flops == truth.flops and calls == [spec.name]
    assert json.loads(entry.read_text())["flops"] == truth.flops
