"""Named settings: the write-ups' DQN and PPO set-ups and our own, as typed dataclasses.

`mario-rl train --preset NAME` starts from one of these; flags override single fields.
Step counts in `DQNConfig` are agent steps (one action held for `frame_skip` frames);
run budgets are in emulator frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mario_rl.agents.dqn import DQNConfig
from mario_rl.agents.ppo import PPOConfig
from mario_rl.env.pipeline import EnvConfig


@dataclass(frozen=True)
class Preset:
    """One named training set-up."""

    name: str
    """What `--preset` takes."""
    source: str
    """Where the settings come from."""
    env: EnvConfig
    """The environment pipeline (the level is set by `--level`)."""
    agent: DQNConfig | PPOConfig
    """The agent's settings; their type picks the training loop."""

    @property
    def algo(self) -> str:
        return self.agent.algo


_BLOG_ENV = EnvConfig(actions="right_only", clip_rewards=True)
_BLOG = DQNConfig(
    double=True,
    gamma=0.9,
    learning_rate=2.5e-4,
    batch_size=32,
    replay_size=100_000,
    burn_in=100_000,
    learn_every=3,
    target_sync_every=10_000,
    loss="huber",
    epsilon_schedule="multiplicative",
    epsilon_start=1.0,
    epsilon_decay=0.99999975,
    epsilon_end=0.1,
)
# The tutorial's DDQN is the blog's with a tenth of the burn-in.
_TUTORIAL = replace(_BLOG, burn_in=10_000)

PRESETS: dict[str, Preset] = {
    "blog-ddqn": Preset(
        "blog-ddqn",
        "TensorFlow DDQN blog: RIGHT_ONLY, clipped rewards, gamma 0.9, Adam 2.5e-4, batch 32, "
        "replay 100k, burn-in 100k, learn every 3, sync 10k, epsilon x0.99999975 to 0.1, Huber",
        _BLOG_ENV,
        _BLOG,
    ),
    "tutorial-ddqn": Preset(
        "tutorial-ddqn",
        "PyTorch Mario tutorial, Double DQN: simple actions, gamma 0.9, Adam 2.5e-4, batch 32, "
        "replay 100k, burn-in 10k, learn every 3, sync 10k, epsilon x0.99999975 to 0.1, "
        "smooth L1 (Huber) loss",
        EnvConfig(actions="simple"),
        _TUTORIAL,
    ),
    "tutorial-dqn": Preset(
        "tutorial-dqn",
        "PyTorch Mario tutorial with the plain DQN target (the DQN-vs-DDQN comparison)",
        EnvConfig(actions="simple"),
        replace(_TUTORIAL, double=False),
    ),
    "keras-dqn": Preset(
        "keras-dqn",
        "Keras DQN blog: left/none/right, three-phase epsilon (observe 3,200 steps at 0.1, "
        "anneal to 0.0001 over 3M steps), gamma 0.99, Adam 1e-4, batch 32, replay 50k, "
        "learn every step, no target network, MSE loss",
        EnvConfig(actions="lnr"),
        DQNConfig(
            double=False,
            gamma=0.99,
            learning_rate=1e-4,
            batch_size=32,
            replay_size=50_000,
            burn_in=3_200,
            learn_every=1,
            target_sync_every=0,
            loss="mse",
            epsilon_schedule="three_phase",
            epsilon_start=0.1,
            epsilon_end=0.0001,
            epsilon_observe=3_200,
            epsilon_anneal=3_000_000,
        ),
    ),
    "dqn-fast": Preset(
        "dqn-fast",
        "ours, tuned to clear 1-1 in few frames: RIGHT_ONLY, 42x42 with the ICM paper's small "
        "torso (ReLU for ELU), random no-op starts and sticky actions 0.25 (as evaluation has "
        "them), end on life loss, truncation after 100 "
        "steps without progress, Double DQN with a dueling head and 3-step returns, reward "
        "x0.1, gamma 0.9, Adam 1e-4, 4 envs, burn-in 5k, one update of 32 per 4 steps, sync "
        "8k, epsilon linear 1 -> 0.02 over 50k steps, gradient norm clipped at 10; a quarter "
        "of training episodes start from snapshots of each env's own best runs",
        EnvConfig(
            actions="right_only",
            # A quarter of the pixels and the small torso: an update costs about a third of
            # the Nature CNN's on 84x84 (benchmarks/bench_dqn.py), near the emulators' pace.
            resize=(42, 42),
            noop_max=30,
            # As evaluation has it: a memorised button sequence must not pay.
            sticky_probability=0.25,
            # A death already ends a single-level episode; this matters for full-game runs.
            end_on_life_loss=True,
            no_progress_steps=100,
        ),
        DQNConfig(
            # ELU's exponential costs as much as the convolutions on the CPU; ReLU does not.
            network="small-relu",
            double=True,
            dueling=True,
            n_step=3,
            gamma=0.9,
            reward_scale=0.1,
            learning_rate=1e-4,
            adam_eps=1.5e-4,
            batch_size=32,
            replay_size=100_000,
            burn_in=5_000,
            learn_every=4,
            target_sync_every=8_000,
            loss="huber",
            max_grad_norm=10.0,
            epsilon_schedule="three_phase",
            epsilon_start=1.0,
            epsilon_end=0.02,
            epsilon_observe=0,
            epsilon_anneal=50_000,
            # The learner's update overlaps four emulators stepping on the other core.
            num_envs=4,
            # As ppo-fast: practise the hard parts without replaying the easy start.
            snapshot_start_probability=0.25,
        ),
    ),
}

# PPO and curiosity.
PRESETS |= {
    "curiosity-ppo": Preset(
        "curiosity-ppo",
        "curiosity write-up: ICM surprisal as the only reward; 14 actions, 12-frame action "
        "spans keeping frames 4, 8, 12, 110x84 resize cropped to 84x84, per-pixel mean and "
        "scalar std from 10,000 random moves, 8 envs, 128-step rollouts, 3 epochs, clip 0.1. "
        "Not in the write-up, from Burda et al. 2018: Adam 1e-4, gamma 0.99, lambda 0.95, "
        "entropy 0.001, no value clipping, surprisal divided by the running std of its "
        "discounted return",
        EnvConfig(
            actions="curiosity",
            frame_skip=12,
            keep_frames=(4, 8, 12),
            resize=(110, 84),
            crop_top=18,
            crop_bottom=8,
            frame_stack=1,
            normalize_moves=10_000,
        ),
        PPOConfig(
            num_envs=8,
            num_steps=128,
            learning_rate=1e-4,
            anneal_lr=False,
            gamma=0.99,
            gae_lambda=0.95,
            num_epochs=3,
            num_minibatches=4,
            clip_coef=0.1,
            # As Burda et al.: the value is fitted to the returns unclipped.
            clip_value_loss=False,
            entropy_coef=0.001,
            network="nature",
            reward_mode="intrinsic",
            # Each env's surprisal over its own std gave rewards of ~1.4 a step and returns
            # of ~90: the value loss's gradient on the shared torso was ~100x the policy's.
            intrinsic_normalization="return-std",
        ),
    ),
    "ppo-fast": Preset(
        "ppo-fast",
        "ours, a first guess for clearing 1-1 in 2M frames on 2 CPU cores: RIGHT_ONLY, 42x42 "
        "with the ICM paper's small torso, random no-op starts and sticky actions 0.25 (as "
        "evaluation has them), end on life loss, truncation "
        "after 100 steps without progress, game reward x0.1, gamma 0.9, Adam 5e-4 annealed, "
        "clip 0.2, no value clipping, 8 envs x 128 steps, 4 epochs of 4 minibatches; a "
        "quarter of training episodes start from snapshots of each env's own best runs; "
        "the next rollout is collected while the last one is learned, the envs stepped in two "
        "groups in turn",
        EnvConfig(
            # 1-1 needs no left, and 5 actions explore faster than 7 or 12.
            actions="right_only",
            frame_skip=4,
            # A quarter of the pixels; with the small torso about a quarter of the Nature
            # CNN's multiply-adds, so learning stays well below the emulator's cost.
            resize=(42, 42),
            frame_stack=4,
            # Random starts and sticky actions, as evaluation has them: the no-op starts
            # vary 1-1 little; sticky actions make a memorised button sequence fail.
            noop_max=30,
            sticky_probability=0.25,
            end_on_life_loss=True,
            # Stuck runs cost frames and teach nothing; truncated, so still bootstrapped.
            no_progress_steps=100,
        ),
        PPOConfig(
            num_envs=8,
            num_steps=128,
            learning_rate=5e-4,
            anneal_lr=True,
            # A short horizon suits the dense progress reward (uvipen's Mario PPO uses 0.9).
            gamma=0.9,
            gae_lambda=0.95,
            num_epochs=4,
            num_minibatches=4,
            clip_coef=0.2,
            # Andrychowicz et al. 2021 ("What Matters in On-Policy RL") find it hurts.
            clip_value_loss=False,
            entropy_coef=0.01,
            network="small",
            reward_mode="extrinsic",
            # Progress per step becomes about 0..1 and death -1.5: unit-scale value targets.
            reward_scale=0.1,
            # Practise the level's hard parts without replaying the easy start every time;
            # three episodes in four still start at the level's real start.
            snapshot_start_probability=0.25,
            # 8 worker processes on 2 cores: the update would otherwise leave them idle.
            overlap=True,
            # Act on one group of 4 while the other 4 emulate: the cores stay busy while
            # this process runs the policy (docs/throughput.md).
            env_groups=2,
        ),
    ),
}


# The level campaign's one recipe: ppo-fast with what made the bundled 1-1 agent robust.
PRESETS["ppo-levels"] = Preset(
    "ppo-levels",
    "ours, the level campaign's one recipe: ppo-fast, plus the last action painted into "
    "the frame (the bundled 1-1 agent's first stage) and a quarter of training episodes "
    "started shortly before one of the env's own recent deaths (its second stage), here "
    "from the first frame on",
    replace(PRESETS["ppo-fast"].env, show_last_action=True),
    replace(PRESETS["ppo-fast"].agent, death_start_probability=0.25),
)


# The campaign's recipe with left and down: its per-level column, never its headline.
PRESETS["ppo-levels-complex"] = Preset(
    "ppo-levels-complex",
    "ours, the level campaign's per-level column, untested at length: ppo-levels with "
    "COMPLEX_MOVEMENT's 12 actions (left, down, up and A alone added), for levels "
    "RIGHT_ONLY cannot clear: 4-4's bottom corridor is entered going left, 8-4 goes on "
    "through pipes entered pressing down, and a castle's axe overshot cannot be walked back to",
    replace(PRESETS["ppo-levels"].env, actions="complex"),
    PRESETS["ppo-levels"].agent,
)


# The campaign's recipe trained on from a level's cap: its column of more frames.
PRESETS["ppo-levels-more"] = Preset(
    "ppo-levels-more",
    "ours, the level campaign's column of more frames: ppo-levels at a fifth of its learning "
    "rate (1e-4), for training a level on from its checkpoint at the headline's cap "
    "(`levels-table --init-from-table`), whose learning rate had annealed to 0; lower "
    "than 5e-4 as those policies already clear most episodes (a choice, not tuned)",
    PRESETS["ppo-levels"].env,
    replace(PRESETS["ppo-levels"].agent, learning_rate=1e-4),
)


# The column of more frames with harder sticky actions in training than evaluation has.
PRESETS["ppo-levels-more-sticky"] = Preset(
    "ppo-levels-more-sticky",
    "ours, a trial beside the column of more frames (same start, same frames, one change): "
    "ppo-levels-more trained under sticky actions 0.4 per frame, evaluated under 0.25 as "
    "every agent is; for levels whose failures are hits spread along the level, whether a "
    "policy trained with more timing noise keeps more margin",
    # 0.4 against 0.25: the new action's mean delay doubles (0.67 against 0.33 frames)
    # and a whole 4-frame step is lost 2.6% of the time against 0.4%.
    replace(PRESETS["ppo-levels"].env, sticky_probability=0.4),
    PRESETS["ppo-levels-more"].agent,
)


# The column of more frames with the policy free to sharpen where it acts greedily.
PRESETS["ppo-levels-more-sharp"] = Preset(
    "ppo-levels-more-sharp",
    "ours, tried beside the column of more frames on 8-3, 2-3, 2-4 and 1-2 (same start, "
    "same frames, one change; 464 against 469 clears of 600, no gain; 8-3 gained, 2-4 lost): "
    "ppo-levels-more without the entropy bonus, so that the policy training samples comes "
    "closer to the greedy one evaluation plays; the bundles put under 0.9 on their greedy "
    "action at about half their steps, and sampling them clears fewer than acting greedily",
    PRESETS["ppo-levels"].env,
    replace(PRESETS["ppo-levels-more"].agent, entropy_coef=0.0),
)


# The column of more frames with a longer horizon, for levels lost to risks taken.
PRESETS["ppo-levels-more-long"] = Preset(
    "ppo-levels-more-long",
    "ours, a trial beside the column of more frames on 8-3, 2-3, 2-4 and 1-2 (same start, "
    "same frames, one change): ppo-levels-more with gamma 0.99 instead of 0.9 and the game "
    "reward x0.01 instead of x0.1 (steady progress keeps its return); at 0.9 three steps of "
    "waiting cost as much as a 24% risk of dying, at 0.99 as much as a 3% one, so a policy "
    "that has learned the level may still run into its dangers",
    PRESETS["ppo-levels"].env,
    replace(PRESETS["ppo-levels-more"].agent, gamma=0.99, reward_scale=0.01),
)


# The column of more frames with two actions more: A alone and a step left.
PRESETS["ppo-levels-more-simple"] = Preset(
    "ppo-levels-more-simple",
    "ours, tried beside the column of more frames on 4-2 and 1-2 (same start, same frames, "
    "one change; 118 against 120 clears of 300, no gain): ppo-levels-more with "
    "SIMPLE_MOVEMENT (RIGHT_ONLY's 5 actions, then A alone and left), trained on from a "
    "RIGHT_ONLY cap checkpoint whose policy grows two actions; for failures that looked as "
    "if only a step back got out of them (4-2's ledge, 1-2's brick pocket)",
    # From scratch, COMPLEX_MOVEMENT's left actions died out on 4-2 before the ledge taught
    # them (docs/campaign.md); here the policy already reaches the ledge from its first step.
    replace(PRESETS["ppo-levels"].env, actions="simple"),
    PRESETS["ppo-levels-more"].agent,
)


# The campaign's recipe seeing twice the pixels each way.
PRESETS["ppo-levels-hires"] = Preset(
    "ppo-levels-hires",
    "ours, a trial on levels whose failures are mostly hits (8-3, 2-2): ppo-levels on "
    "84x84 frames instead of 42x42 (the same small torso, its last layer 6x6 instead of "
    "3x3), since at 42x42 a hammer or Mario himself is a faint pixel or two against the sky",
    # The NES screen is 256x240: a 16-pixel enemy is about 2.6 pixels wide at 42 and 5.3 at
    # 84, an 8-pixel hammer 1.3 and 2.6; area resizing blends them into the sky's grey.
    replace(PRESETS["ppo-levels"].env, resize=(84, 84)),
    PRESETS["ppo-levels"].agent,
)


# The campaign's recipe with a stall counted as the failure evaluation counts it.
PRESETS["ppo-levels-stall"] = Preset(
    "ppo-levels-stall",
    "ours, tried on 4-2 (paused at 3.4M frames): ppo-levels with training's no-progress cut "
    "ending the episode as a death (terminated, death penalty) instead of truncating it, so "
    "that a stall (4-2's ledge, the far side of a castle's axe) is a failure in training as "
    "in evaluation and its approach joins the death starts",
    replace(PRESETS["ppo-levels"].env, no_progress_is_death=True),
    PRESETS["ppo-levels"].agent,
)


# The campaign's recipe with death starts from further back than the fall.
PRESETS["ppo-levels-deep"] = Preset(
    "ppo-levels-deep",
    "ours, tried on 1-3 (no clear in 4.2M frames): ppo-levels with each death start drawn "
    "from up to 4 snapshots further back (17-56 steps before the death instead of 17-24), "
    "since on 1-3 the jump is lost 18-24 steps before the fall and the nearer starts are "
    "past saving",
    PRESETS["ppo-levels"].env,
    replace(PRESETS["ppo-levels"].agent, death_start_spread=4),
)


# The campaign's recipe with each state's exploration kept above a floor.
PRESETS["ppo-levels-explore"] = Preset(
    "ppo-levels-explore",
    "ours, tried on 1-3 (no clear in 4.1M frames): ppo-levels with an entropy floor of 0.5 "
    "nats (of RIGHT_ONLY's 1.61): states under it are pulled toward the uniform policy at "
    "weight 0.1 (the entropy bonus weighs every state alike at 0.01), since 1-3's policy "
    "picks its failing jump at 0.92-0.96",
    PRESETS["ppo-levels"].env,
    replace(PRESETS["ppo-levels"].agent, entropy_floor=0.5, entropy_floor_coef=0.1),
)


# The campaign's recipe with a longer horizon.
PRESETS["ppo-levels-long"] = Preset(
    "ppo-levels-long",
    "ours, tried on 1-3 (no clear in 4.1M frames): ppo-levels with gamma 0.99 instead of 0.9 "
    "and the game reward x0.01 instead of x0.1 (steady progress then has the same return as "
    "before), since 1-3's jump is lost about 24 steps before the fall, where 0.9 weighs the "
    "fall at 0.08 and 0.99 at 0.79",
    PRESETS["ppo-levels"].env,
    replace(PRESETS["ppo-levels"].agent, gamma=0.99, reward_scale=0.01),
)


# Curiosity beside the game's reward, for the levels the campaign's recipe struggles on.
PRESETS["ppo-levels-icm"] = Preset(
    "ppo-levels-icm",
    "ours, untested at length: ppo-levels with the ICM's normalised surprisal added to the "
    "scaled game reward at weight 0.1 (reward mode `mixed`), the ICM on the same small "
    "torso; for levels where the progress reward alone stalls",
    PRESETS["ppo-levels"].env,
    # 0.1: a step's scaled progress reward is about 0.1-1 and the surprisal is divided by
    # its running std, so the bonus is felt where progress stalls but does not outweigh
    # progress (a first guess; intrinsic_coef changes it).
    replace(PRESETS["ppo-levels"].agent, reward_mode="mixed", intrinsic_coef=0.1),
)


def get_preset(name: str) -> Preset:
    """The preset called `name`; a one-line error listing the names otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]
