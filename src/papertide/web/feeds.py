"""RSS/Atom feeds."""

from fastapi import APIRouter

router = APIRouter()
