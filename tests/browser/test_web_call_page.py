"""The call page in real headless Chromium over the replayed captures and their real recordings: the
call's story, the player (playing, seeking with Range requests, one side at a time), the transcript
following the playhead, the quality score, and a manager kept out of another manager's call."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, Response

from calltracking.calls.transcript import Speaker, Transcript
from calltracking.quality.checklist import checklist_in_force
from calltracking.quality.repository import score_transcript
from recordings.repository import recordings_of_calls
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.browser import PHONE, browser_page, screenshot, sign_in
from tests.helpers.quality import NOW, said
from transcription.jobs import TranscriptionJob, save_transcript

M, C = Speaker.MANAGER, Speaker.CUSTOMER
NOT_FOUND = "Failed to load resource: the server responded with a status of 404 (Not Found)"
# Inside the captured recordings' six seconds: greeting, next step and goodbye said; no name, no offer.
SPOKEN = Transcript(
    "ru",
    (
        said(M, 0.2, 2.0, "добрый день компания ромашка"),
        said(C, 2.2, 3.4, "ну хочу узнать цену"),
        said(M, 3.6, 5.6, "я отправлю договор всего доброго"),
    ),
)


async def _recorded_call_of(api: ApiHarness, manager: str) -> dict[str, Any]:
    """A captured inbound call with a split recording, answered by `manager`, as the API details it."""
    response = await api.client.get(
        "/api/v1/calls", params={"has_recording": "true", "limit": 100}, headers=api.auth("supervisor")
    )
    assert response.status == 200
    items = (await response.json())["items"]
    found = next(
        item
        for item in items
        if item["manager"] == manager and item["direction"] == "inbound" and item["recording"]["sides"]
    )
    detail = await api.client.get(f"/api/v1/calls/{found['id']}", headers=api.auth("supervisor"))
    return dict(await detail.json())


async def _give_transcript_and_score(api: ApiHarness, call_id: int) -> None:
    """As the transcription worker stores them: the transcript, then its score, in one transaction."""
    async with api.sessions.begin() as session:
        recording = (await recordings_of_calls(session, [call_id]))[call_id]
        job = TranscriptionJob(0, recording.id, call_id, SPOKEN.language, 0)
        await save_transcript(session, job, SPOKEN, NOW)
        await score_transcript(session, call_id, SPOKEN, checklist_in_force(None), NOW)


async def _texts(page: Page, selector: str) -> list[str]:
    return [" ".join(text.split()) for text in await page.locator(selector).all_inner_texts()]


async def _current_word(page: Page) -> list[str]:
    return await page.eval_on_selector_all(
        ".word.current", "spans => spans.map(s => s.textContent + '@' + s.getAttribute('aria-current'))"
    )


async def _until(page: Page, expression: str, seconds: float = 15.0) -> None:
    """Poll `expression` in the page until true: Playwright's own wait evaluates a string with eval,
    which the page's Content-Security-Policy refuses, as it should."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await page.evaluate(f"() => Boolean({expression})"):
        assert asyncio.get_running_loop().time() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.05)


async def _set_time(page: Page, seconds: float) -> None:
    await page.evaluate(
        """seconds => new Promise(done => {
            const player = document.querySelector('audio');
            player.pause();
            player.addEventListener('seeked', () => done(), {once: true});
            player.currentTime = seconds;
        })""",
        seconds,
    )


async def test_a_supervisor_plays_a_call_and_its_transcript_follows(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    async with running_api(database_url, tmp_path) as api:
        call = await _recorded_call_of(api, "101")
        call_id = call["id"]
        await _give_transcript_and_score(api, call_id)
        base = str(api.client.make_url("/"))
        async with browser_page(browser, base) as (page, console):
            responses: list[Response] = []
            page.on("response", lambda response: responses.append(response))
            await sign_in(page, api.tokens["supervisor"], then=f"/ui/calls/{call_id}")

            # The call's facts and story, as the API tells them.
            assert await page.text_content("[data-field=caller]") == call["caller"]
            assert await page.text_content("[data-field=did]") == call["did"]
            rang = await page.eval_on_selector_all(
                "[data-step=rang]", "items => items.map(i => i.dataset.who)"
            )
            assert rang == call["rang"] and rang
            answered = await page.eval_on_selector_all(
                "[data-step=answered]", "items => items.map(i => i.dataset.who)"
            )
            assert answered == [call["answered_by"]]
            hung_up = await page.get_attribute("[data-step=hung_up]", "data-who")
            assert hung_up == call["hangup_by"]
            endpoints = await page.eval_on_selector_all(
                "#parties tr[data-endpoint]", "rows => rows.map(r => r.dataset.endpoint)"
            )
            assert endpoints == [leg["endpoint"] for leg in call["legs"]]
            assert await page.text_content("[data-field=entity_external_id]") == call["entity"]["external_id"]

            # It plays: the playhead moves.
            assert await page.get_attribute("audio", "src") == f"/api/v1/calls/{call_id}/recording"
            await page.evaluate("document.querySelector('audio').play()")
            await _until(page, "document.querySelector('audio').currentTime > 0.5")

            # A click on a word seeks there, and the audio is asked for by byte ranges (206).
            word = page.locator(".word", has_text="договор")
            await word.click()
            await _until(page, "Math.abs(document.querySelector('audio').currentTime - 4.5) < 0.9")
            recording_responses = [r for r in responses if f"/calls/{call_id}/recording" in r.url]
            assert recording_responses
            assert all(r.request.headers.get("range", "").startswith("bytes=") for r in recording_responses)
            assert any(
                r.status == 206 and (r.headers.get("content-range") or "").startswith("bytes ")
                for r in recording_responses
            )
            # The endpoint serves a later part of the file alone, to this session, as a seek needs.
            later = await page.evaluate(
                """url => fetch(url, {headers: {Range: 'bytes=4000-'}})
                    .then(r => [r.status, r.headers.get('content-range')])""",
                f"/api/v1/calls/{call_id}/recording",
            )
            assert later[0] == 206 and later[1].startswith("bytes 4000-")

            # The word under the playhead is marked, and only it.
            await _set_time(page, 0.7)  # "день": 0.65 to 1.1
            await _until(page, "document.querySelector('.word.current') !== null")
            assert await _current_word(page) == ["день@true"]
            await _set_time(page, 2.95)  # "узнать": 2.8 to 3.1
            await _until(page, "document.querySelector('.word.current')?.textContent === 'узнать'")
            assert await _current_word(page) == ["узнать@true"]

            # Speakers are told apart by class; the score and its hits are shown, a hit seeks the player.
            assert await page.locator(".utterance.speaker-manager").count() == 2
            assert await page.locator(".utterance.speaker-customer").count() == 1
            # No "меня зовут": a required phrase missed fails the checklist, whatever else was said.
            assert await page.get_attribute("[data-passed]", "data-passed") == "false"
            assert await page.locator(".check.hit[data-check=next_step]").count() == 1
            assert await page.locator(".check.miss[data-check=own_name]").count() == 1
            await page.locator(".check[data-check=greeting] button.seek").click()
            await _until(page, "document.querySelector('audio').currentTime < 1.5")

            # One side at a time, from the same moment.
            await _set_time(page, 3.0)
            await page.click("button.side[data-side=customer]")
            await _until(
                page,
                "document.querySelector('audio').src.endsWith('?side=customer')"
                " && Math.abs(document.querySelector('audio').currentTime - 3.0) < 0.5",
            )
            assert await page.get_attribute("button.side[data-side=customer]", "aria-pressed") == "true"
            await _set_time(page, 0.0)
            await screenshot(page, f"call-{backend}")
            assert console.errors == []

        async with browser_page(browser, base, viewport=PHONE, locale="ru-RU") as (phone, phone_console):
            await sign_in(phone, api.tokens["supervisor"], then=f"/ui/calls/{call_id}")
            assert await phone.text_content("#timeline-title") == "Ход звонка"  # the page's own catalog
            overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
            await screenshot(phone, f"call-{backend}-phone")
            assert phone_console.errors == []


async def test_a_manager_cannot_open_another_managers_call(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path) as api:
        call = await _recorded_call_of(api, "101")
        base = str(api.client.make_url("/"))
        async with browser_page(browser, base) as (page, console):
            await sign_in(page, api.tokens["other_manager"], then="/ui/")
            response = await page.goto(f"/ui/calls/{call['id']}")
            assert response is not None and response.status == 404
            assert await page.locator("audio").count() == 0
            assert call["caller"] not in await page.content()
            recording = await page.request.get(f"/api/v1/calls/{call['id']}/recording")
            assert recording.status == 404
            missing = await page.goto("/ui/calls/999999")
            assert missing is not None and missing.status == 404
            # The browser reports each 404 document it loaded; nothing else (no CSP violation) may appear.
            assert (
                console.errors
                == ["Failed to load resource: the server responded with a status of 404 (Not Found)"] * 2
            )
        async with browser_page(browser, base) as (own, own_console):
            await sign_in(own, api.tokens["manager"], then=f"/ui/calls/{call['id']}")
            assert await own.locator("audio").count() == 1  # the call's own manager (101) does see it
            assert own_console.errors == []
