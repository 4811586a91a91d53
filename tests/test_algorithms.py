"""Every named algorithm is defined in code: built from ``{"name": n}`` alone it has its
published structure, and its declared facts (compressible, needs_closure, vectors per step)
hold when it runs."""

from __future__ import annotations

import pytest
import torch

from compoptim.comm import run_local
from compoptim.compress import CompressContext, build_compressor
from compoptim.errors import UserError
from compoptim.optim import ALGORITHMS, Decentralized, FlatParameters, build_optimizer
from compoptim.optim.adaptive import DecentralizedAdaptive
from compoptim.optim.adpsgd import ADPSGD
from compoptim.optim.beer import BEER
from compoptim.optim.combine import AdaptThenCombine, OverlappedCombineThenAdapt
from compoptim.optim.deepsqueeze import DeepSqueeze
from compoptim.optim.docom import DoCoM
from compoptim.optim.estimates import AllReducedGradient, RawGradient, TrackedGradient
from compoptim.optim.gossip import ChocoGossip, ExactGossip, GlobalAverage, NoGossip, Periodic, PushSumGossip
from compoptim.optim.powergossip import PowerGossip
from compoptim.optim.rules import SGD, Adagrad, Adam, DadamRule, DamscoRule, HeavyBall
from compoptim.topology import ring

D = 6
NONE, TOPK = {"name": "none"}, {"name": "topk", "ratio": 0.5}

# name -> (class, rule, estimate, combine, x gossip (inner, period)) with no compressor, from {"name": n} alone.
STRUCTURE = {
    "dsgd": (Decentralized, SGD, RawGradient, OverlappedCombineThenAdapt, (ExactGossip, 1)),
    "sgd": (Decentralized, SGD, RawGradient, AdaptThenCombine, (ExactGossip, 1)),
    "choco_sgd": (Decentralized, SGD, RawGradient, AdaptThenCombine, (ChocoGossip, 1)),
    "adam": (Decentralized, Adam, RawGradient, AdaptThenCombine, (ExactGossip, 1)),
    "adamw": (Decentralized, Adam, RawGradient, AdaptThenCombine, (ExactGossip, 1)),
    "amsgrad": (Decentralized, Adam, RawGradient, AdaptThenCombine, (ExactGossip, 1)),
    "adagrad": (Decentralized, Adagrad, RawGradient, AdaptThenCombine, (ExactGossip, 1)),
    "gt_dsgd": (Decentralized, SGD, TrackedGradient, AdaptThenCombine, (ExactGossip, 1)),
    "cdproxsgt": (Decentralized, SGD, TrackedGradient, AdaptThenCombine, (ExactGossip, 1)),
    "dashco": (Decentralized, HeavyBall, TrackedGradient, AdaptThenCombine, (ExactGossip, 1)),
    "damsco": (Decentralized, DamscoRule, RawGradient, AdaptThenCombine, (ExactGossip, 1)),
    "dadam": (Decentralized, DadamRule, RawGradient, OverlappedCombineThenAdapt, (ExactGossip, 1)),
    "squarm_sgd": (Decentralized, SGD, RawGradient, AdaptThenCombine, (ExactGossip, 2)),
    "sgp": (Decentralized, SGD, RawGradient, AdaptThenCombine, (PushSumGossip, 1)),
    "powergossip": (Decentralized, SGD, RawGradient, AdaptThenCombine, (PowerGossip, 1)),
    "local_sgd": (Decentralized, SGD, RawGradient, AdaptThenCombine, (GlobalAverage, 8)),
    "allreduce_sgd": (Decentralized, SGD, AllReducedGradient, AdaptThenCombine, (NoGossip, 1)),
    "allreduce_adam": (Decentralized, Adam, AllReducedGradient, AdaptThenCombine, (NoGossip, 1)),
    "deepsqueeze": (DeepSqueeze, None, None, None, None),
    "beer": (BEER, None, None, None, None),
    "docom": (DoCoM, None, None, None, None),
    "damsgrad": (DecentralizedAdaptive, None, None, None, None),
    "dadagrad": (DecentralizedAdaptive, None, None, None, None),
}


def build(cfg, comm, compressor=NONE):
    flat = FlatParameters(torch.nn.Linear(D, 1, bias=False).double())
    return build_optimizer(cfg, flat, comm,
                           lambda s: build_compressor(compressor, CompressContext(dtype=torch.float64, seed=s))), flat


# Asynchronous methods run only as MPI ranks (tests/mpi/test_adpsgd_mpi.py); in process they refuse.
ASYNCHRONOUS = {"adpsgd": ADPSGD}


def test_every_registered_algorithm_is_under_test():
    assert set(STRUCTURE) | set(ASYNCHRONOUS) == set(ALGORITHMS)
    assert set(ASYNCHRONOUS) == set(ALGORITHMS.with_fact("asynchronous"))


@pytest.mark.parametrize("name", sorted(ASYNCHRONOUS))
def test_an_asynchronous_method_refuses_the_in_process_backend_in_one_line(name):
    assert ALGORITHMS[name].factory is ASYNCHRONOUS[name]
    with pytest.raises(UserError, match=r"reads and writes the neighbours' models through MPI one-sided windows: "
                                        r"start it with mpirun -np N compoptim-run \(backend=mpi\)$"):
        run_local(ring(3), lambda comm: build({"name": name}, comm))


@pytest.mark.parametrize("name", sorted(STRUCTURE))
def test_each_name_alone_builds_its_published_structure(name):
    cls, rule, estimate, combine, gossip = STRUCTURE[name]
    (opt, _), *_ = run_local(ring(3), lambda comm: build({"name": name}, comm))
    assert type(opt) is cls
    if cls is not Decentralized:
        return
    assert type(opt.rule) is rule and type(opt.estimate) is estimate and type(opt.combine) is combine
    inner, period = gossip
    x_gossip = opt.combine.gossip
    if period > 1:
        assert type(x_gossip) is Periodic and x_gossip.period == period
        x_gossip = x_gossip.inner
    assert type(x_gossip) is inner
    if estimate is TrackedGradient:
        assert opt.estimate.gossip_first == (combine is not AdaptThenCombine)


def test_published_values_come_from_code():
    defaults = {n: ALGORITHMS[n].defaults() for n in ALGORITHMS}
    assert defaults["dsgd"]["gossip"] == "exact" and defaults["dsgd"]["order"] == "cta"
    assert defaults["gt_dsgd"]["tracking"] is True and defaults["local_sgd"]["period"] == 8
    assert defaults["adamw"]["weight_decay"] == 0.01 and defaults["adam"]["weight_decay"] == 0.0
    assert defaults["beer"] == {"lr": 0.1, "gamma": 0.2, "initial_gradient": "full"}
    assert defaults["docom"] == {"lr": 0.05, "gamma": 0.2, "beta": 0.3, "initial_gradient": "minibatch"}


@pytest.mark.parametrize("name", sorted(STRUCTURE))
def test_declared_facts_hold(name):
    """compressible: builds with top-k (or refuses it in one line); needs_closure: the step
    calls the closure; vectors_per_step: model-sized messages per step and neighbour."""
    facts = ALGORITHMS[name].facts

    def node(comm, compressor):
        opt, flat = build({"name": name, "lr": 1e-3}, comm, compressor)
        calls = []

        def closure():
            calls.append(1)
            flat.grads.copy_(flat.params - comm.rank)

        for step in range(17):
            closure()
            opt.step(closure=closure)
            if step == 0:
                start = comm.counters.bytes_sent
        # an all-reduce sends the vector once; a gossip round once to each of the 2 neighbours
        fanout = 1 if ALGORITHMS[name].defaults().get("gossip") in ("allreduce", "local") else 2
        return (comm.counters.bytes_sent - start) / (16 * fanout * 8 * D), len(calls) > 17

    vectors, closure_used = run_local(ring(3), lambda comm: node(comm, NONE))[0]
    weight = (D + 1) / D if name == "sgp" else 1.0  # push-sum's weight travels with the vector
    assert vectors == pytest.approx(facts["vectors_per_step"] * weight)
    assert closure_used == facts["needs_closure"]
    if facts["compressible"]:
        run_local(ring(3), lambda comm: node(comm, TOPK))
    else:
        with pytest.raises(UserError, match="compressor"):
            run_local(ring(3), lambda comm: node(comm, TOPK))
