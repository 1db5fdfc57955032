"""Deterministic generator of the embedded synthetic ATP wave (`data/sample/W900.sav`).

The sample exists so that a fresh clone runs the whole pipeline offline. It imitates a real
ATP file closely enough to exercise every path of the build: Pew-style F_* profile columns
(with refusals), a survey weight that is not uniform, admin columns, an open end, a numeric
item, a form-split question, a "Neither" option listed last, and answers that depend on the
demographics (so group distributions differ and steering has something to find).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

WAVE = "W900"
SEED = 20260
N_RESPONDENTS = 3000
REFUSED = 99.0


@dataclass(frozen=True)
class SampleQuestion:
    qcode: str
    wording: str
    options: tuple[str, ...]
    # effect of each latent trait on the answer index (positive = later options more likely)
    effects: dict[str, float]
    refusal_labels: tuple[str, ...] = ("Refused",)
    routing: str = "ASK ALL"
    ordered: bool = True


QUESTIONS: tuple[SampleQuestion, ...] = (
    SampleQuestion("ECONRATE", "Thinking about the nation's economy, how would you rate economic conditions in this country today?",
                   ("Excellent", "Good", "Only fair", "Poor"), {"dem": 0.9, "lib": 0.3, "age": -0.2}),
    SampleQuestion("GOVSIZE", "If you had to choose, would you rather have a smaller government providing fewer services, or a bigger government providing more services?",
                   ("Smaller government, fewer services", "Bigger government, more services"), {"dem": 1.4, "lib": 0.8, "income": -0.3}),
    SampleQuestion("CLIMATE", "How much, if at all, do you think human activity, such as the burning of fossil fuels, contributes to global climate change?",
                   ("A great deal", "Some", "Not too much", "Not at all"), {"dem": -1.1, "lib": -0.9, "age": 0.4, "educ": -0.3},
                   refusal_labels=("Don't know", "Refused")),
    SampleQuestion("GUNLAWS", "Do you think gun laws in this country should be more strict than they are today, less strict than they are today, or kept as they are now?",
                   ("More strict", "Less strict", "Kept as they are now"), {"dem": -1.3, "lib": -0.6, "female": -0.5},
                   routing="ASK FORM 1", ordered=False),
    SampleQuestion("SOCNEWS", "How often, if ever, do you get news from social media?",
                   ("Often", "Sometimes", "Rarely", "Never"), {"age": 1.1, "educ": 0.2}),
    SampleQuestion("AIFEEL", "Overall, would you say the increased use of artificial intelligence in daily life makes you feel...",
                   ("More excited than concerned", "More concerned than excited", "Equally concerned and excited"),
                   {"age": 0.5, "educ": -0.3, "female": 0.3}, ordered=False),
    SampleQuestion("ECONPOOR", "Do you think the country's current economic conditions are helping or hurting people who are poor?",
                   ("Helping a lot", "Helping a little", "Hurting a little", "Hurting a lot", "Neither helping nor hurting"),
                   {"dem": 0.9, "lib": 0.4, "income": -0.2}, ordered=False),
    SampleQuestion("RELIMP", "How important is religion in your life?",
                   ("Very important", "Somewhat important", "Not too important", "Not at all important"),
                   {"relig": -1.6, "lib": 0.5, "age": -0.4}),
    SampleQuestion("IMMIG", "Which statement comes closer to your own views? Immigrants today strengthen our country because of their hard work and talents, or immigrants today are a burden on our country because they take our jobs, housing and health care.",
                   ("Immigrants today strengthen our country", "Immigrants today are a burden on our country"),
                   {"dem": -1.2, "lib": -0.7, "educ": -0.4}),
    SampleQuestion("TRUSTSCI", "How much confidence, if any, do you have in scientists to act in the best interests of the public?",
                   ("A great deal", "A fair amount", "Not too much", "No confidence at all"),
                   {"dem": -0.8, "educ": -0.6, "relig": 0.3}),
    SampleQuestion("REMOTE", "If you had the choice, how often would you want to work from home?",
                   ("All of the time", "Most of the time", "Some of the time", "Rarely or never"),
                   {"age": 0.6, "educ": -0.5, "income": -0.2}),
    SampleQuestion("MINWAGE", "Would you favor or oppose raising the federal minimum wage to $15.00 an hour?",
                   ("Strongly favor", "Somewhat favor", "Somewhat oppose", "Strongly oppose"),
                   {"dem": -1.2, "lib": -0.5, "income": 0.3}),
)

PROFILE = {
    "F_CREGION": (["Northeast", "Midwest", "South", "West"], [0.17, 0.21, 0.38, 0.24]),
    "F_AGECAT": (["18-29", "30-49", "50-64", "65+"], [0.20, 0.33, 0.25, 0.22]),
    "F_GENDER": (["A man", "A woman", "In some other way"], [0.48, 0.51, 0.01]),
    "F_EDUCCAT2": (["Less than high school", "High school graduate", "Some college, no degree", "Associate's degree",
                    "College graduate/some post grad", "Postgraduate"], [0.09, 0.28, 0.20, 0.10, 0.20, 0.13]),
    "F_CITIZEN": (["Yes", "No"], [0.93, 0.07]),
    "F_MARITAL": (["Married", "Living with a partner", "Divorced", "Separated", "Widowed", "Never been married"],
                  [0.50, 0.08, 0.10, 0.02, 0.06, 0.24]),
    "F_RELIG": (["Protestant", "Roman Catholic", "Mormon (Church of Jesus Christ of Latter-day Saints or LDS)",
                 "Orthodox (such as Greek, Russian, or some other Orthodox church)", "Jewish", "Muslim", "Buddhist",
                 "Hindu", "Atheist", "Agnostic", "Other", "Nothing in particular"],
                [0.40, 0.20, 0.02, 0.01, 0.02, 0.01, 0.01, 0.01, 0.05, 0.06, 0.02, 0.19]),
    "F_ATTEND": (["More than once a week", "Once a week", "Once or twice a month", "A few times a year", "Seldom", "Never"],
                 [0.07, 0.18, 0.10, 0.14, 0.25, 0.26]),
    "F_PARTY_FINAL": (["Republican", "Democrat", "Independent", "Something else"], [0.28, 0.31, 0.31, 0.10]),
    "F_INCOME": (["Less than $10,000", "$10,000 to less than $20,000", "$20,000 to less than $30,000",
                  "$30,000 to less than $40,000", "$40,000 to less than $50,000", "$50,000 to less than $75,000",
                  "$75,000 to less than $100,000", "$100,000 to less than $150,000", "$150,000 or more"],
                 [0.07, 0.09, 0.09, 0.09, 0.08, 0.17, 0.13, 0.15, 0.13]),
    "F_IDEO": (["Very conservative", "Conservative", "Moderate", "Liberal", "Very liberal"], [0.08, 0.27, 0.37, 0.19, 0.09]),
    "F_RACECMB": (["White", "Black or African-American", "Asian or Asian-American", "Mixed Race", "Or some other race"],
                  [0.70, 0.12, 0.06, 0.04, 0.08]),
    "F_HISP": (["Yes", "No"], [0.16, 0.84]),
}
PROFILE_LABELS = {
    "F_CREGION": "Census region", "F_AGECAT": "Age category", "F_GENDER": "Gender",
    "F_EDUCCAT2": "Education (six categories)", "F_CITIZEN": "U.S. citizen", "F_MARITAL": "Marital status",
    "F_RELIG": "Religious affiliation", "F_ATTEND": "Religious service attendance", "F_PARTY_FINAL": "Party identification",
    "F_INCOME": "Family income", "F_IDEO": "Political ideology", "F_RACECMB": "Race (combined)", "F_HISP": "Hispanic",
}


def _profile(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = {}
    for col, (labels, probs) in PROFILE.items():
        codes = rng.choice(np.arange(1, len(labels) + 1), size=n, p=np.asarray(probs) / sum(probs)).astype(float)
        refused = rng.random(n) < (0.0 if col in ("F_CREGION", "F_AGECAT") else 0.01)
        codes[refused] = REFUSED
        frame[col] = codes
    profile = pd.DataFrame(frame)
    # Party and ideology go together, as they do in the real panel.
    ideo = profile["F_IDEO"].to_numpy().copy()
    party = profile["F_PARTY_FINAL"].to_numpy().copy()
    flip = (rng.random(n) < 0.6) & (ideo <= 2) & (party != REFUSED)
    party[flip] = 1.0
    flip = (rng.random(n) < 0.6) & np.isin(ideo, [4, 5]) & (party != REFUSED)
    party[flip] = 2.0
    profile["F_PARTY_FINAL"] = party
    return profile


def _traits(p: pd.DataFrame) -> dict[str, np.ndarray]:
    """Standardised latent traits the answers depend on (refusals count as the mean)."""
    def z(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = np.zeros_like(values, dtype=float)
        v = values[valid]
        out[valid] = (v - v.mean()) / (v.std() or 1.0)
        return out

    col = {k: p[k].to_numpy() for k in p.columns}
    ok = {k: v != REFUSED for k, v in col.items()}
    return {
        "dem": np.where(col["F_PARTY_FINAL"] == 2, 1.0, np.where(col["F_PARTY_FINAL"] == 1, -1.0, 0.0)),
        "lib": z(col["F_IDEO"], ok["F_IDEO"]),
        "age": z(col["F_AGECAT"], ok["F_AGECAT"]),
        "educ": z(col["F_EDUCCAT2"], ok["F_EDUCCAT2"]),
        "income": z(col["F_INCOME"], ok["F_INCOME"]),
        "female": (col["F_GENDER"] == 2).astype(float),
        "relig": -z(col["F_ATTEND"], ok["F_ATTEND"]),
    }


def _answers(rng: np.random.Generator, q: SampleQuestion, traits: dict[str, np.ndarray], n: int) -> np.ndarray:
    k = len(q.options)
    latent = sum(w * traits[t] for t, w in q.effects.items()) + rng.logistic(size=n) * 0.9
    if q.ordered:
        cuts = np.quantile(latent, np.linspace(0, 1, k + 1)[1:-1]) + rng.normal(0, 0.2, size=k - 1)
        idx = np.searchsorted(np.sort(cuts), latent)
    else:
        # nominal: each option has its own affinity to the latent position
        centres = np.linspace(-1.5, 1.5, k)
        rng.shuffle(centres)
        scores = -((latent[:, None] - centres[None, :]) ** 2) + rng.gumbel(size=(n, k))
        idx = scores.argmax(axis=1)
    codes = idx.astype(float) + 1.0
    refusal_codes = [98.0, REFUSED][-len(q.refusal_labels):]
    refused = rng.random(n) < 0.015
    codes[refused] = rng.choice(refusal_codes, size=int(refused.sum()))
    return codes


def generate_sample(out_dir: Path, n: int = N_RESPONDENTS, seed: int = SEED) -> Path:
    """Write `W900.sav`; same seed, same data (the committed file is this function's output)."""
    rng = np.random.default_rng(seed)
    profile = _profile(rng, n)
    traits = _traits(profile)
    frame = pd.DataFrame({"QKEY": np.arange(100001, 100001 + n, dtype=float)})
    frame[f"DEVICE_TYPE_{WAVE}"] = rng.choice([1.0, 2.0, 3.0], size=n, p=[0.6, 0.1, 0.3])
    frame[f"FORM_{WAVE}"] = rng.choice([1.0, 2.0], size=n)
    frame[f"LANG_{WAVE}"] = rng.choice([9.0, 10.0], size=n, p=[0.95, 0.05])
    start = pd.Timestamp("2026-03-02") + pd.to_timedelta(rng.integers(0, 13 * 24 * 60, size=n), unit="min")
    frame[f"INTERVIEW_START_{WAVE}"] = start
    frame[f"INTERVIEW_END_{WAVE}"] = start + pd.to_timedelta(rng.integers(8, 40, size=n), unit="min")
    column_labels = {"QKEY": "Unique ID", f"DEVICE_TYPE_{WAVE}": f"{WAVE} Device Type", f"FORM_{WAVE}": "Form number",
                     f"LANG_{WAVE}": "Language of survey materials", f"INTERVIEW_START_{WAVE}": "Interview start",
                     f"INTERVIEW_END_{WAVE}": "Interview end"}
    value_labels: dict[str, dict[float, str]] = {
        f"DEVICE_TYPE_{WAVE}": {1.0: "Mobile phone", 2.0: "Tablet", 3.0: "Desktop"},
        f"FORM_{WAVE}": {1.0: "Form 1", 2.0: "Form 2"},
        f"LANG_{WAVE}": {9.0: "English", 10.0: "Spanish"},
    }
    for q in QUESTIONS:
        col = f"{q.qcode}_{WAVE}"
        codes = _answers(rng, q, traits, n)
        if q.routing == "ASK FORM 1":
            codes[frame[f"FORM_{WAVE}"].to_numpy() != 1.0] = np.nan
        frame[col] = codes
        column_labels[col] = f"{col}. {q.wording}"
        labels = {float(i + 1): o for i, o in enumerate(q.options)}
        labels.update(dict(zip([98.0, REFUSED][-len(q.refusal_labels):], q.refusal_labels)))
        value_labels[col] = labels
    frame[f"SCREEN_{WAVE}"] = np.where(rng.random(n) < 0.97, 1.0, REFUSED)
    column_labels[f"SCREEN_{WAVE}"] = f"SCREEN_{WAVE}. Respondent confirmed they are 18 or older"
    value_labels[f"SCREEN_{WAVE}"] = {1.0: "Yes", REFUSED: "Refused"}
    frame[f"NUMHH_{WAVE}"] = rng.integers(1, 7, size=n).astype(float)
    column_labels[f"NUMHH_{WAVE}"] = f"NUMHH_{WAVE}. How many people live in your household, including yourself?"
    frame[f"MIPOPEN_{WAVE}"] = rng.choice(["The economy", "Health care", "Immigration", "Climate", ""], size=n)
    column_labels[f"MIPOPEN_{WAVE}"] = f"MIPOPEN_{WAVE}. What do you think is the most important problem facing the country today?"
    for col, (labels, _) in PROFILE.items():
        frame[col] = profile[col]
        value_labels[col] = {float(i + 1): t for i, t in enumerate(labels)} | {REFUSED: "Refused"}
        column_labels[col] = PROFILE_LABELS[col]
    frame[f"WEIGHT_{WAVE}"] = _weights(rng, profile)
    column_labels[f"WEIGHT_{WAVE}"] = f"Wave {WAVE[1:]} weight"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{WAVE}.sav"
    pyreadstat.write_sav(
        frame, str(path), file_label="Synthetic sample wave: economy, science and society",
        column_labels=column_labels, variable_value_labels=value_labels,
        variable_measure={c: "nominal" for c in value_labels},
    )
    return path


def _weights(rng: np.random.Generator, profile: pd.DataFrame) -> np.ndarray:
    """Non-uniform weights, larger for under-represented groups, as raking would give."""
    w = rng.lognormal(mean=0.0, sigma=0.45, size=len(profile))
    w *= np.where(profile["F_AGECAT"].to_numpy() == 1, 1.5, 1.0)
    w *= np.where(profile["F_EDUCCAT2"].to_numpy() <= 2, 1.3, 1.0)
    return np.round(w / w.mean(), 6)
