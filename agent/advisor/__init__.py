"""Gain-balance advisor: measured, explained fader advice for a set of stems.

``advise(stems, sample_rate, reference=None, plan=None)`` (see :mod:`.advice`) answers "what
should I turn up or down?" with numbers from :mod:`.analysis` (BS.1770 loudness, ERB band levels,
activity), :mod:`.masking` (who masks whom, spatial release), :mod:`.differential` (against a
reference balance) or :mod:`.priors` (against documented targets; choirs and quartets get the
part targets of :mod:`.ensembles`, learned by :mod:`.learned_prior` where a model applies).
``docs/advisor.md`` explains the models and the bench.
"""
from stase.agent.advisor.advice import advise, advise_analysis, guarded_rephrase, model_rephraser

__all__ = ["advise", "advise_analysis", "guarded_rephrase", "model_rephraser"]
