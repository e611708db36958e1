"""The chat page `mindllm serve` answers at `/`, driven for real in headless Chromium (Debian's
chromium + chromium-driver through selenium): it loads, a message typed and sent streams back the
same greedy answer the API gives, nothing lands on the console, and the screenshot is not blank.
Skips when chromium, its driver or selenium are absent."""
import shutil
import struct
import zlib

import pytest

from test_serve import KEY, free_port, model, start, stop  # noqa: F401 (model: the fixture)

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def png_colours(png):
    """Distinct RGB(A) pixel values of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw, stride = zlib.decompress(idat), w * bpp
    prev, colours = bytearray(stride), set()
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the row filter (PNG spec, section 9)
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(line[i:i + bpp]) for i in range(0, stride, bpp * 7))  # every 7th pixel
        prev = line
    return colours


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):  # noqa: F811
    log = tmp_path_factory.mktemp("web") / "serve.log"
    port = free_port()
    p = start(model, port, log, "--parallel", "2", "--api-key", KEY, "--chat-template", "chatml", "--ctx", "128")
    yield port, model.name
    stop(p, log)


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,700",
              "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def test_chat_page_streams_an_answer_in_chromium(served, browser, tmp_path):
    import openai

    served, name = served
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{served}/v1", api_key=KEY, max_retries=0, timeout=60)
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}]
    want = client.chat.completions.create(model=name, messages=messages, temperature=0).choices[0].message.content
    assert want  # the tiny model says something to this question

    browser.get(f"http://127.0.0.1:{served}/")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "model").text)  # /v1/models answered
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.ID, "system").send_keys("Answer briefly.")
    temperature = browser.find_element(By.ID, "temperature")
    temperature.clear()
    temperature.send_keys("0")
    browser.find_element(By.ID, "input").send_keys("Name a colour.")
    browser.find_element(By.ID, "send").click()
    # Streamed into the DOM: the answer bubble fills and loses its cursor once the stream ended.
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant:not(.streaming)") and not d.find_element(
            By.ID, "send").get_attribute("disabled"))
    assert browser.find_element(By.ID, "error").text == ""
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".msg.user")] == ["Name a colour."]
    answer = browser.find_element(By.CSS_SELECTOR, ".msg.assistant").get_attribute("textContent")
    assert answer == want  # greedy: the page shows exactly what the API answers

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    png = browser.get_screenshot_as_png()
    (tmp_path / "chat.png").write_bytes(png)
    assert len(png_colours(png)) >= 4  # background, bubbles, text: not a blank page
