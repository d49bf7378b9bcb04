"""Small pieces every part of the suite shares: atomic files, provenance, the result contract."""
