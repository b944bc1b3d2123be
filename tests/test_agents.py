"""Agents (trajectory_tree): the grid environment's checker against reasoning-gym's own
scorer, trajectory trees sharing prefixes, UCT converging to the better action, and the
preference pairs it yields."""

import itertools

import numpy as np
import pytest

from w2s.agents.env import ACTIONS, check, distance, make_puzzles, move, observation
from w2s.agents.env import reward as env_reward
from w2s.agents.mcts import preference_pairs, uct
from w2s.agents.policy import position_after
from w2s.agents.trees import branch_points, merge


@pytest.fixture(scope="module")
def puzzles():
    return make_puzzles(6, seed=3, min_moves=2, max_moves=4)


def test_checker_agrees_with_reasoning_gym_on_every_shortest_length_path(puzzles):
    import reasoning_gym as rg

    scorer = rg.create_dataset("shortest_path", size=1, seed=0)
    for p in puzzles:
        assert check(p, p.solution)
        k = len(p.solution)
        for seq in itertools.product(ACTIONS, repeat=k):
            ours = check(p, seq)
            theirs = scorer.score_answer(" ".join(seq), p.entry) == 1.0
            assert ours == theirs, (p.key, seq)


def test_checker_rejects_overrun_illegal_and_unfinished_paths(puzzles):
    p = puzzles[0]
    assert not check(p, p.solution[:-1])  # goal not reached
    assert not check(p, (*p.solution, "up"))  # the episode ended at the goal
    blocked = [a for a in ACTIONS if move(p, p.start, a) is None]
    assert blocked and not check(p, (blocked[0], *p.solution))
    # a detour longer than the budget fails even though it ends on the goal
    back = {"up": "down", "down": "up", "left": "right", "right": "left"}
    a = p.solution[0]
    detour = (a, back[a]) * p.budget + p.solution
    assert not check(p, detour)
    if p.budget >= len(p.solution) + 2:
        assert check(p, (a, back[a], *p.solution))


def test_reward_is_one_on_success_else_half_the_distance_closed(puzzles):
    for p in puzzles:
        k = len(p.solution)
        assert distance(p, p.start) == k
        assert env_reward(p, p.solution) == 1.0
        assert env_reward(p, p.solution[:-1]) == pytest.approx(0.5 * (1 - 1 / k))
        blocked = [a for a in ACTIONS if move(p, p.start, a) is None]
        if blocked:  # an illegal first move leaves the agent at the start
            assert env_reward(p, (blocked[0], *p.solution)) == 0.0


def test_observation_marks_the_agent_and_hides_the_start():
    p = make_puzzles(1, seed=5)[0]
    pos = position_after(p, p.solution[:1])
    grid = observation(p, pos).splitlines()[1 : 1 + len(p.grid)]
    cells = [row.split(" ") for row in grid]
    assert sum(c == "*" for r in cells for c in r) == 1
    assert cells[pos[0]][pos[1]] == "*"
    assert cells[p.goal[0]][p.goal[1]] == "#"


def test_trees_merge_shared_prefixes():
    trajs = [
        (("up", "left", "left"), 1.0),
        (("up", "left", "down"), 0.0),
        (("up", "right"), 0.0),
        (("down",), 0.0),
        (("up", "left", "left"), 1.0),
    ]
    root = merge(trajs)
    assert set(root.children) == {"up", "down"}
    up = root.children["up"]
    assert set(up.children) == {"left", "right"}
    assert set(up.children["left"].children) == {"left", "down"}
    # nodes: root, up, down, up-left, up-right, up-left-left, up-left-down
    assert root.count() == 7
    assert up.children["left"].children["left"].rewards == [1.0, 1.0]
    assert up.children["left"].children["left"].prefix == ("up", "left", "left")
    assert [n.prefix for n in branch_points(root)] == [(), ("up",), ("up", "left")]


def test_uct_visits_converge_to_the_better_action():
    # two actions; 'a' succeeds 3 times in 4, 'b' once in 4
    trajs = [(("a",), r) for r in (1, 1, 1, 0)] + [(("b",), r) for r in (0, 0, 0, 1)]
    visits = []
    for n in (50, 400, 2000):
        root = uct(merge(trajs), n, c=0.5, seed=1)
        a, b = root.children["a"], root.children["b"]
        visits.append(a.visits / n)
        assert a.visits + b.visits == n
    assert visits[0] < visits[1] < visits[2] and visits[2] > 0.9
    assert abs(root.children["a"].q - 0.75) < 0.05
    assert preference_pairs(root) == [((), "a", "b")]


def test_uct_backs_up_rewards_below_a_branch():
    # the better first move is the one whose subtree holds the success
    trajs = [
        (("right", "up"), 1.0),
        (("right", "down"), 0.0),
        (("left", "up"), 0.0),
        (("left", "left"), 0.0),
    ]
    root = uct(merge(trajs), 300, c=0.5, seed=0)
    assert root.children["right"].visits > root.children["left"].visits
    assert root.children["left"].q == 0.0 and root.children["right"].q > 0.5
    pairs = preference_pairs(root)
    assert ((), "right", "left") in pairs and (("right",), "up", "down") in pairs
    # equal values below 'left' give no pair
    assert all(prefix != ("left",) for prefix, _, _ in pairs)


def test_uct_is_seeded():
    trajs = [(("a", "b"), 1.0), (("a", "c"), 0.0), (("d",), 0.0)]
    q = [[n.visits for n in branch_points(uct(merge(trajs), 60, seed=7))] for _ in range(2)]
    assert q[0] == q[1]


@pytest.fixture(scope="module")
def smol():
    from w2s.models.lm.hf import HFLanguageModel

    return HFLanguageModel("smollm2-135m", dtype="float32", cache=False)


@pytest.mark.slow
def test_one_pass_move_scores_equal_per_pair_log_probs(smol, puzzles):
    from w2s.agents.policy import action_logprobs

    obs = [observation(p, p.start) for p in puzzles[:3]]
    obs.append(obs[0])  # a repeated observation is scored once, returned twice
    pairs = [(o, a) for o in obs for a in ACTIONS]
    slow = np.array(smol.logprobs_batch(pairs)).reshape(len(obs), len(ACTIONS))
    fast = action_logprobs(smol, obs)
    np.testing.assert_allclose(fast, slow, atol=1e-4)


@pytest.mark.slow
def test_rollouts_are_seeded_and_rewarded_by_the_checker(smol, puzzles):
    from w2s.agents.policy import rollout

    a = rollout(smol, puzzles[:3] * 2, temperature=1.5, seed=4)
    assert a == rollout(smol, puzzles[:3] * 2, temperature=1.5, seed=4)
    assert a != rollout(smol, puzzles[:3] * 2, temperature=1.5, seed=5)
    for p, (actions, reward) in zip(puzzles[:3] * 2, a, strict=True):
        assert 1 <= len(actions) <= p.budget
        assert reward == env_reward(p, actions) and (reward == 1.0) == check(p, actions)


def test_dpo_trains_in_the_model_dtype_not_trls_bf16_default(tmp_path):
    """TRL's DPOConfig defaults to bf16 autocast (emulated, ~6x slower on these CPUs): a
    float32 (or `auto` on CPU) model must train in float32, a bf16 one in bf16."""
    import torch

    from w2s.agents.training import dpo_config

    hp = {"beta": 0.1, "epochs": 1, "lr": 1e-4, "batch_size": 2, "seed": 0}
    for dtype, bf16 in (("float32", False), ("auto", False), ("bfloat16", True)):
        config = dpo_config(str(tmp_path), dtype, 64, hp)
        assert config.bf16 is bf16, dtype
        assert config.use_cpu is not torch.cuda.is_available()
