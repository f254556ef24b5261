"""Browser tests of the portal (issue 10): headless Chromium driven by Playwright."""
