"""Next best action: which content, fund or action each customer should be offered next.

The flow, each step a module with no connections (``services/recommend`` feeds it):

- ``catalogue``   — content items, fund products and actions as one table of items with the
  attributes suitability judges (R-level, horizon, variety) and a validity window;
- ``eligibility`` — the hard constraints as one boolean mask over customers × items, applied
  **before** ranking (suitability, consent, validity, already held or sent, frequency caps,
  the compliance lexicon, an action's prerequisites), each refusal with its rule;
  ``recheck`` judges every chosen pair again through ``core.suitability.judge`` — a second,
  scalar implementation — and counts violations (must stay 0);
- ``rankers``     — popularity within the eligible set per segment, collaborative filtering
  on the interaction log, propensity scores for actions, and a LightGBM LambdaRank over
  customer × item × interaction features;
- ``topk``        — exactly k eligible items per customer when k exist, under the tenant's
  business rules (boost, filter, limit per type);
- ``explore``     — the served list: top-k with its last slot explored (epsilon-greedy), each
  shown item with its exact inclusion probability, reproducible per customer and day;
- ``metrics``     — NDCG@k, recall@k, MAP, coverage, novelty; ``ope`` — inverse-propensity
  estimates of a new policy's click and conversion rate from the logged recommendations.
"""
