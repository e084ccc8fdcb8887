"""Data-subject requests: export all data of a customer; erasure, or storage only."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
