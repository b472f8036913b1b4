"""Regenerate the bundled sample datasets (seeded: the same files every run).

Run ``python -m synth_lab.samples.make_sample`` from the repository root. Training and
validation records draw on disjoint question pools, so validation loss measures something.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SEED = 20241127
OUT = Path(__file__).resolve().parent

SYSTEM_PROMPTS = (
    "You are a helpful assistant. Answer briefly.",
    "You are a friendly tutor. Explain things simply.",
    "You are a concise assistant. Use one or two sentences.",
    "You answer like a patient teacher talking to a curious student.",
    "Keep answers short and practical.",
)

# (question, answer) pairs, written by hand; the last _N_VAL go to the validation file only.
QA = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are in a leap year?", "A leap year has 366 days."),
    ("What does CPU stand for?", "CPU stands for central processing unit."),
    ("Why is the sky blue?", "Air scatters blue light more than red light, so the sky looks blue."),
    ("What is 12 times 12?", "12 times 12 is 144."),
    ("Name three primary colors.", "Red, yellow and blue are the traditional primary colors."),
    ("How do I boil an egg?", "Put the egg in boiling water for 7 to 9 minutes, then cool it."),
    ("What is photosynthesis?", "Plants use sunlight, water and CO2 to make sugar and oxygen."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is the boiling point of water?", "Water boils at 100 °C at sea level."),
    ("Translate 'thank you' into Spanish.", "'Thank you' in Spanish is 'gracias'."),
    ("What is a prime number?", "A prime number has exactly two divisors: 1 and itself."),
    ("How far is the Moon?", "The Moon is about 384,000 km from Earth."),
    ("What is the largest planet?", "Jupiter is the largest planet in the solar system."),
    ("Give me a synonym for 'happy'.", "'Joyful' is a synonym for 'happy'."),
    ("What is an API?", "An API is a set of rules that lets programs talk to each other."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("What language is spoken in Brazil?", "Portuguese is the main language of Brazil."),
    ("What is a haiku?", "A haiku is a short poem of three lines with 5, 7 and 5 syllables."),
    ("How do I reverse a list in Python?", "Use my_list.reverse() in place, or my_list[::-1]."),
    ("What does HTTP stand for?", "HTTP stands for Hypertext Transfer Protocol."),
    (
        "Is a tomato a fruit?",
        "Botanically yes: a tomato is a fruit, though cooks treat it as a vegetable.",
    ),
    ("What is the freezing point of water in Fahrenheit?", "Water freezes at 32 °F."),
    ("Write a one-line motto for a bakery.", "Fresh from our oven to your morning."),
    ("What is machine learning?", "Machine learning lets computers learn patterns from data."),
    ("How many continents are there?", "There are seven continents."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("Suggest a name for a grey cat.", "How about 'Smokey' or 'Ash'?"),
    ("What is 15% of 200?", "15% of 200 is 30."),
    ("What is the opposite of 'ancient'?", "The opposite of 'ancient' is 'modern'."),
    ("How do I center text in CSS?", "Use text-align: center; on the text's container."),
    ("What year did the first person walk on the Moon?", "It was 1969, with Apollo 11."),
    ("What is a noun?", "A noun names a person, place, thing or idea."),
    (
        "Why do we have seasons?",
        "Earth's tilted axis changes how directly sunlight hits us over the year.",
    ),
    ("What is the longest river?", "The Nile and the Amazon are both about 6,500 km long."),
    (
        "How do I make a cup of tea?",
        "Pour hot water over a tea bag, wait 3 to 5 minutes, then remove it.",
    ),
    ("What is an atom?", "An atom is the smallest unit of a chemical element."),
    ("What does 'RSVP' mean?", "RSVP asks you to reply to an invitation."),
    ("Convert 5 kilometers to miles.", "5 kilometers is about 3.1 miles."),
    ("What is gravity?", "Gravity is the force that pulls masses toward each other."),
    ("Write a SQL query that counts rows in a table named users.", "SELECT COUNT(*) FROM users;"),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("What is a verb?", "A verb describes an action or a state, like 'run' or 'be'."),
    ("How many minutes are in a day?", "A day has 1,440 minutes."),
    ("What is the main gas in air?", "Nitrogen makes up about 78% of the air."),
    (
        "Give me a tip for better sleep.",
        "Keep a regular bedtime and avoid screens for an hour before it.",
    ),
    ("What does RAM do?", "RAM holds the data a computer is working on right now."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("How do bees make honey?", "Bees turn flower nectar into honey by evaporating its water."),
    ("What is 7 cubed?", "7 cubed is 343."),
    ("What is a metaphor?", "A metaphor describes one thing as another, like 'time is a thief'."),
    ("How do I exit Vim?", "Press Esc, type :q! and press Enter to quit without saving."),
    ("What is the speed of light?", "Light travels at about 300,000 km per second."),
    # validation only
    ("What is the capital of Canada?", "The capital of Canada is Ottawa."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is DNA?", "DNA is the molecule that carries genetic instructions."),
    ("What is 9 times 8?", "9 times 8 is 72."),
    ("Who discovered penicillin?", "Alexander Fleming discovered penicillin in 1928."),
    ("What is an adjective?", "An adjective describes a noun, like 'red' or 'quick'."),
    ("How do I sort a list in Python?", "Use sorted(my_list), or my_list.sort() to sort in place."),
    ("What is the hottest planet?", "Venus is the hottest planet."),
    ("Translate 'good night' into French.", "'Good night' in French is 'bonne nuit'."),
    ("What is 25% of 80?", "25% of 80 is 20."),
)
_N_VAL = 10

FOLLOW_UPS = (
    ("Thanks! Can you say that even shorter?", "In short: {short}"),
    ("Are you sure?", "Yes. {answer}"),
    ("Can you repeat that?", "Of course. {answer}"),
)

# (tool, user question, arguments, tool result, final answer)
TOOL_CASES = (
    (
        "get_weather",
        "What's the weather in {x}?",
        {"city": "{x}"},
        {"temp_c": "{n}", "sky": "clear"},
        "It is {n} °C and clear in {x}.",
    ),
    (
        "calculator",
        "What is {n} plus 17?",
        {"expression": "{n} + 17"},
        {"result": "{n17}"},
        "{n} plus 17 is {n17}.",
    ),
    (
        "get_time",
        "What time is it in {x}?",
        {"city": "{x}"},
        {"time": "{n}:15"},
        "It is {n}:15 in {x}.",
    ),
)
TOOLS = {
    "get_weather": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    "calculator": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
    "get_time": {
        "name": "get_time",
        "description": "Local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CITIES = ("Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Berlin", "Sydney", "Toronto", "Madrid")


def _fill(value: Any, **slots: str) -> Any:
    if isinstance(value, str):
        filled = value.format(**slots)
        # A bare number slot becomes a JSON number, as a real tool would return it.
        return int(filled) if value in ("{n}", "{n17}") else filled
    if isinstance(value, dict):
        return {k: _fill(v, **slots) for k, v in value.items()}
    return value


def _start(rng: random.Random) -> list[dict[str, Any]]:
    if rng.random() < 0.4:
        return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}]
    return []


def _single(rng: random.Random, q: str, a: str) -> dict[str, Any]:
    messages = _start(rng)
    if rng.random() < 0.05:  # a few use the list-of-parts content form
        messages.append({"role": "user", "content": [{"type": "text", "text": q}]})
    else:
        messages.append({"role": "user", "content": q})
    messages.append({"role": "assistant", "content": a})
    return {"messages": messages}


def _multi(rng: random.Random, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    messages = _start(rng)
    for q, a in pairs:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    if rng.random() < 0.5:
        follow, template = rng.choice(FOLLOW_UPS)
        short = pairs[-1][1].split(",")[0].rstrip(".") + "."
        messages += [
            {"role": "user", "content": follow},
            {"role": "assistant", "content": template.format(short=short, answer=pairs[-1][1])},
        ]
    return {"messages": messages}


def _tool(rng: random.Random, index: int) -> dict[str, Any]:
    name, question, args, result, answer = rng.choice(TOOL_CASES)
    n = rng.randint(2, 23)  # also an hour of the day for get_time
    slots = {"x": rng.choice(CITIES), "n": str(n), "n17": str(n + 17)}
    call_id = f"call_{index:03d}"
    messages = [
        *_start(rng),
        {"role": "user", "content": _fill(question, **slots)},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(_fill(args, **slots))},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps(_fill(result, **slots))},
        {"role": "assistant", "content": _fill(answer, **slots)},
    ]
    return {"messages": messages, "tools": [TOOLS[name]]}


def build(rng: random.Random, qa: list[tuple[str, str]], n: int, offset: int) -> list[dict]:
    """``n`` distinct records: 60% single questions, 28% multi-turn, 12% tool calls."""
    records: list[dict] = []
    seen: set[str] = set()
    while len(records) < n:
        roll = rng.random()
        if roll < 0.60:
            record = _single(rng, *rng.choice(qa))
        elif roll < 0.88:
            record = _multi(rng, rng.sample(qa, rng.randint(2, 3)))
        else:
            record = _tool(rng, offset + len(records))
        key = json.dumps(record, sort_keys=True)
        if key not in seen:  # the sample must not trip the duplicate-record warning
            seen.add(key)
            records.append(record)
    return records


def write(path: Path, records: list[dict]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    train_qa, val_qa = list(QA[:-_N_VAL]), list(QA[-_N_VAL:])
    write(OUT / "chat_sample.jsonl", build(rng, train_qa, 200, 0))
    write(OUT / "chat_sample_val.jsonl", build(rng, val_qa, 40, 500))


if __name__ == "__main__":
    main()
