"""The named algorithms (``optimizer=<name>``), each a short composition with its published
structure and hyper-parameters, stated here in code (optax's ``alias.py`` is the model).

A rule-based algorithm is ``rule_based(rule, <communication settings>)`` (``decentralized.py``):
its factory's signature is lr, the communication settings and the rule's own settings, with
this algorithm's published values as defaults, so ``{"name": "gt_dsgd"}`` alone builds
gradient tracking. The others (BEER, DoCoM, DeepSqueeze, the Chen et al. framework) are
their own classes. Declared facts, read by tests and scripts:

- ``compressible``: defined with compressed messages (False: exact gossip or all-reduce only);
- ``needs_closure``: evaluates a second gradient of the same minibatch per step;
- ``vectors_per_step``: model-sized vectors each node sends per step and neighbour with the
  defaults (averaged over the period; an all-reduce counts as one);
- ``directed``: runs on a directed topology (column-stochastic W); the others need an
  undirected one (symmetric, doubly stochastic W);
- ``asynchronous``: its nodes step at their own pace over MPI one-sided windows (no
  synchronous rounds: no simulated network time, no pipeline stages).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from compoptim.comm.base import Communicator
from compoptim.optim.adaptive import DecentralizedAdaptive
from compoptim.optim.adpsgd import ADPSGD
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer
from compoptim.optim.beer import BEER
from compoptim.optim.decentralized import rule_based
from compoptim.optim.deepsqueeze import DeepSqueeze
from compoptim.optim.docom import DoCoM
from compoptim.optim.flat import FlatParameters
from compoptim.optim.rules import RULES
from compoptim.registry import Registry, resolved_hints, specialize

CONTEXT = ("flat", "comm", "compressors")
ALGORITHMS = Registry("optimizer", context=CONTEXT, facts=("compressible", "needs_closure", "vectors_per_step"))
# Settings of one method family, not settings of every rule-based algorithm: an algorithm
# offers them only when it names them in ``own`` (otherwise they are fixed at these values).
FAMILY_SETTINGS = {"trigger": 0.0, "rank": 1, "seed": 0}


def rule_algorithm(name: str, rule: str, doc: str, own: tuple[str, ...] = (),
                   **published: Any) -> Callable[..., DecentralizedOptimizer]:
    """The factory of a rule-based algorithm: ``rule_based`` with the local rule ``rule`` and
    the published values ``published`` (lr, communication and rule settings) as defaults;
    ``own``: the FAMILY_SETTINGS it offers."""
    fixed = {key: value for key, value in FAMILY_SETTINGS.items() if key not in own}
    communication = specialize(rule_based, name, fixed={"name": name, "rule": None, **fixed})
    rule_factory = RULES[rule]
    comm_params = list(inspect.signature(communication).parameters.values())
    rule_params = rule_factory.parameters()
    comm_names = {p.name for p in comm_params[len(CONTEXT) + 1:]}
    unknown = sorted(set(published) - {"lr"} - comm_names - {p.name for p in rule_params})
    if unknown:
        raise TypeError(f"{name}: no setting {unknown[0]}")
    rule_hints = resolved_hints(rule_factory.factory)
    params = [p.replace(default=published.get(p.name, p.default)) for p in comm_params]
    params += [p.replace(default=published.get(p.name, p.default), annotation=rule_hints.get(p.name, p.annotation))
               for p in rule_params]
    signature = inspect.Signature(params)

    def build(*args: Any, **settings: Any) -> DecentralizedOptimizer:
        bound = signature.bind(*args, **settings)
        bound.apply_defaults()
        values = dict(bound.arguments)
        flat = values["flat"]
        rule_settings = {p.name: values.pop(p.name) for p in rule_params}
        local_rule = RULES.build({"name": rule, **rule_settings}, flat.params)
        return rule_based(**values, name=name, rule=local_rule)

    build.__signature__ = signature  # type: ignore[attr-defined]
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


def _register(name: str, factory: Callable[..., Any], compressible: bool = True, needs_closure: bool = False,
              vectors_per_step: float = 1.0, directed: bool = False, asynchronous: bool = False) -> None:
    ALGORITHMS.register(name, factory, compressible=compressible, needs_closure=needs_closure,
                        vectors_per_step=vectors_per_step, directed=directed, asynchronous=asynchronous)


# --- exact gossip, all-reduce and periodic averaging: no compressed form ---------------------
_register("dsgd", rule_algorithm("dsgd", "sgd", lr=0.2, gossip="exact", order="cta", doc="""
    D-PSGD (Lian et al. 2017, Algorithm 1): x_{t+1} = sum_j w_ij x_j^t - lr g(x_t): exact gossip
    of x, combine then adapt (overlapped with the backward pass where possible)."""), compressible=False)
_register("allreduce_sgd", rule_algorithm("allreduce_sgd", "sgd", lr=0.2, gossip="allreduce", doc="""
    Centralized baseline: x_{t+1} = x_t - lr (1/n) sum_j g_j(x_t), the gradient all-reduced every step."""),
    compressible=False)
_register("allreduce_adam", rule_algorithm("allreduce_adam", "adam", lr=1e-3, gossip="allreduce", doc="""
    Centralized baseline: torch.optim.Adam on the gradient all-reduced every step."""), compressible=False)
_register("local_sgd", rule_algorithm("local_sgd", "sgd", lr=0.2, gossip="local", period=8, doc="""
    Local SGD (Stich 2019): local SGD steps; x <- (1/n) sum_j x_j (exact average) every `period` steps."""),
    compressible=False, vectors_per_step=1 / 8)

# --- decentralized rules: exact gossip, or CHOCO-compressed with a compressor ----------------
_register("sgd", rule_algorithm("sgd", "sgd", lr=0.2, gamma=0.05, doc="""
    Decentralized SGD: x_{t+1} = G(x_t - Δ_sgd(x_t, g_t)) (adapt, then combine), Δ as torch.optim.SGD
    (momentum, Nesterov, weight decay); G exact gossip, or CHOCO-Gossip (Koloskova et al. 2019) with a
    compressor; comm_set may add the momentum buffer m."""))
_register("choco_sgd", rule_algorithm("choco_sgd", "sgd", lr=0.2, gossip="choco", gamma=0.05, own=("trigger",), doc="""
    CHOCO-SGD (Koloskova, Stich & Jaggi 2019, Algorithm 2): x_half = x - lr g; q = C(x_half - x_hat);
    x_hat += q; s += sum_j w_ij q_j; x = x_half + gamma (s - x_hat). With trigger c > 0, q = 0 (nothing
    sent) unless ||x_half - x_hat||^2 > c lr^2."""))
_register("adam", rule_algorithm("adam", "adam", lr=1e-3, gamma=0.05, doc="""
    Decentralized Adam (Kingma & Ba 2015): x <- G(x - Δ_adam(x, g)), local moments as torch.optim.Adam;
    G exact, or CHOCO-compressed with a compressor; comm_set may add the moments m, v."""))
_register("adamw", rule_algorithm("adamw", "adamw", lr=1e-3, gamma=0.05, doc="""
    Decentralized AdamW (Loshchilov & Hutter 2019): x <- G(x - Δ_adamw(x, g)), as torch.optim.AdamW."""))
_register("amsgrad", rule_algorithm("amsgrad", "amsgrad", lr=1e-3, gamma=0.05, doc="""
    Decentralized AMSGrad (Reddi et al. 2018): x <- G(x - Δ_amsgrad(x, g)), as torch.optim.Adam(amsgrad=True)."""))
_register("adagrad", rule_algorithm("adagrad", "adagrad", lr=0.01, gamma=0.05, doc="""
    Decentralized AdaGrad (Duchi et al. 2011): x <- G(x - Δ_adagrad(x, g)), as torch.optim.Adagrad."""))

# --- gradient tracking -----------------------------------------------------------------------
_register("gt_dsgd", rule_algorithm("gt_dsgd", "sgd", lr=0.1, tracking=True, gamma=0.05, doc="""
    Gradient tracking (Nedić, Olshevsky & Shi 2017, DIGing; here adapt then combine):
    y <- G(y + g_new - g_old);  x <- G(x - lr y); y^0 = g^0 (order=cta: y <- G(y) + g_new - g_old,
    x <- G(x) - lr y). CHOCO-compressed gossip of x and y with a compressor."""), vectors_per_step=2)
_register("cdproxsgt", rule_algorithm("cdproxsgt", "sgd", lr=0.05, tracking=True, gamma=0.05, gamma_y=0.05, doc="""
    CDProxSGT (Yan et al. 2023): compressed gradient tracking + proximal SGD step:
    y_half = y + g - g_prev; y = y_half + gamma_y (W - I) y_hat; x_half = prox_{lr l1}(x - lr y);
    x = x_half + gamma (W - I) x_hat."""), vectors_per_step=2)
_register("dashco", rule_algorithm("dashco", "heavy_ball", lr=0.1, tracking=True, gamma=0.05, gamma_y=0.05, doc="""
    DaSHCo (Liu et al. 2025, authors' code): compressed gradient tracking + heavy-ball momentum:
    y_half = y + g - g_prev; y = y_half + gamma_y (W - I) y_hat; m = b m + (1-b) y;
    x = G(x - lr m)."""), vectors_per_step=2)

# --- adaptive and momentum methods with their own step -----------------------------------------
_register("damsco", rule_algorithm("damsco", "damsco", lr=1e-3, gamma=0.05, doc="""
    DAMSCo (Liu et al. 2025, authors' code): AMSGrad-type step m / sqrt(u + eps), then CHOCO-compressed
    gossip of x."""))
_register("dadam", rule_algorithm("dadam", "dadam", lr=1e-3, order="cta", gamma=0.05, doc="""
    DADAM (Nazari, Tarzanagh & Michailidis 2019): x <- W x - lr m / (sqrt(v_hat) + eps),
    v_hat = b3 v_hat + (1-b3) max(v_hat, v) (combine, then adapt)."""))
_register("squarm_sgd", rule_algorithm("squarm_sgd", "sgd", lr=0.02, momentum=0.9, nesterov=True, gamma=0.05,
                                       period=2, own=("trigger",), doc="""
    SQuARM-SGD (Singh, Data, George & Diggavi 2021, Algorithm 1): local Nesterov-momentum steps
    x_half = x - lr Δ_nesterov(g); at the communication steps (every `period`), node i sends
    q_i = C(x_half - x_hat_i) only if ||x_half - x_hat_i||^2 > c lr^2 (the event trigger, c = trigger;
    0 sends every round), else q_i = 0; x_hat_i += q_i; s_i += sum_j w_ij q_j;
    x = x_half + gamma (s_i - x_hat_i)."""), vectors_per_step=1 / 2)

# --- per-edge low-rank compression of model differences -----------------------------------------
_register("powergossip", rule_algorithm("powergossip", "sgd", lr=0.2, gossip="powergossip", gamma=1.0,
                                        own=("rank", "seed"), doc="""
    PowerGossip (Vogels, Karimireddy & Jaggi 2020, Algorithm 1): x_half = x - lr Δ_sgd(g); for each
    edge (i, j) and parameter matrix, one warm-started power-iteration half step on M = X_hi - X_lo
    (rank r, alternating P = M Q̂ and Q = M^T P̂, each end sending its own product), then
    x_i = x_half + gamma sum_j w_ij (x_j - x_i)^. Vectors travel whole. See optim/powergossip.py."""),
    compressible=False)

# --- asynchronous ------------------------------------------------------------------------------
_register("adpsgd", ADPSGD, compressible=False, asynchronous=True)

# --- push-sum on directed graphs --------------------------------------------------------------
_register("sgp", rule_algorithm("sgp", "sgd", lr=0.2, gossip="pushsum", doc="""
    Stochastic Gradient Push (Assran, Loizou, Ballas & Rabbat 2019, Algorithm 1): z_i = u_i / w_i;
    u_i <- u_i - lr g(z_i) (the local rule's step, here SGD; momentum/nesterov settings apply it to
    the numerator); (u_i, w_i) <- sum_j p_ij (u_j, w_j) over in-neighbours, P column stochastic
    (any directed topology, e.g. one_peer_directed_exponential)."""), compressible=False, directed=True)

# --- algorithms with their own update --------------------------------------------------------
_register("deepsqueeze", DeepSqueeze)
_register("beer", BEER, vectors_per_step=2)
_register("docom", DoCoM, needs_closure=True, vectors_per_step=2)
_register("damsgrad", specialize(DecentralizedAdaptive, "damsgrad", fixed={"kind": "amsgrad"}, lr=1e-3, doc="""
    Decentralized AMSGrad (Chen, Karimi, Zhao & Li 2023, Algorithm 2): see DecentralizedAdaptive."""),
    vectors_per_step=2)
_register("dadagrad", specialize(DecentralizedAdaptive, "dadagrad", fixed={"kind": "adagrad"}, lr=0.01, doc="""
    Decentralized AdaGrad (Chen et al. 2023, Algorithm 3): see DecentralizedAdaptive."""), vectors_per_step=2)


def build_optimizer(cfg: Mapping[str, Any], flat: FlatParameters, comm: Communicator,
                    compressors: CompressorFactory) -> DecentralizedOptimizer:
    """The algorithm ``cfg['name']`` with its settings (defaults: its published values)."""
    return ALGORITHMS.build(cfg, flat, comm, compressors)
