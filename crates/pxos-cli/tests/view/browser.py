"""Drives the pxOS view page in headless Chromium over WebDriver (selenium).

usage: browser.py URL PXOS_BINARY WORKDIR FS_PATH

Prints one JSON object with what it saw; writes WORKDIR/canvas.png (a
screenshot of the VRAM canvas at zoom 1) for the Rust test to compare with
the VRAM PNG. Any failed expectation raises, with the page's state.
"""

import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

url, pxos, work, fs_path = sys.argv[1:5]
seen = {}


def wait(what, predicate, timeout=20.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as err:  # the element may not be there yet
            last = repr(err)
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}); status: {driver.find_element(By.ID, 'status').text}")


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000", "--force-device-scale-factor=1",
    f"--user-data-dir={os.path.join(work, 'chromium-profile')}",
]:
    options.add_argument(flag)
driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
try:
    driver.get(url)
    assert driver.title == "pxOS view", driver.title
    wait("the event stream", lambda: driver.find_element(By.ID, "status").text.startswith("live"))
    seen["loaded"] = True

    # A build with --view while the page is open: its frames reach the page.
    build = subprocess.run(
        [pxos, "vram", "build", "default", "--view", "-o", os.path.join(work, "os.png")],
        capture_output=True, text=True, timeout=120,
    )
    assert build.returncode == 0, build.stderr
    label = wait("the last step of the build", lambda: driver.execute_script(
        "return document.body.dataset.label === 'run_hello' && document.body.dataset.label"))
    seen["last_label"] = label
    seen["frames"] = int(driver.execute_script("return document.body.dataset.seq"))
    assert seen["frames"] >= 5, seen

    # The canvas at zoom 1 shows the VRAM's pixels.
    canvas = driver.find_element(By.ID, "vram-canvas")
    canvas.screenshot(os.path.join(work, "canvas.png"))

    # A key press zooms; R resets.
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("+")
    wait("zoom 2", lambda: driver.execute_script("return window.pxos.zoom") == 2)
    seen["zoom_after_plus"] = driver.find_element(By.ID, "zoom").text
    body.send_keys("r")
    wait("zoom reset", lambda: driver.execute_script("return window.pxos.zoom") == 1)

    # Hovering a pixel of the opcode palette shows its provenance.
    width = canvas.size["width"]
    height = canvas.size["height"]
    ActionChains(driver).move_to_element_with_offset(canvas, 3 - width // 2, 17 - height // 2).perform()
    hover = wait("provenance on hover", lambda: "written by" in driver.find_element(By.ID, "hover").text
                 and driver.find_element(By.ID, "hover").text)
    seen["hover"] = hover
    coords = hover[1:hover.index(")")].split(", ")
    seen["who_at_hover"] = driver.execute_script(
        "return fetch(`/api/vram/who?x=${arguments[0]}&y=${arguments[1]}`).then(r => r.json())", coords[0], coords[1])

    # Generations of the improvement loop arrive too; the diff mode compares two.
    loop = subprocess.run(
        [pxos, "vram", "loop", "deficient", "--generations", "3", "--view", "--out", os.path.join(work, "gens")],
        capture_output=True, text=True, timeout=300,
    )
    assert loop.returncode in (0, 1), loop.stderr
    wait("two generations to compare", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#diff-a option")) >= 2)
    driver.find_element(By.ID, "diff-toggle").click()
    seen["diff"] = wait("the diff counts", lambda: driver.find_element(By.ID, "diff-counts").text)
    driver.find_element(By.ID, "diff-toggle").click()

    # The PixelFS browser lists the file the test added, and opens it.
    driver.find_element(By.ID, "tab-files").click()
    item = wait("the test's file in the list", lambda: driver.find_element(By.CSS_SELECTOR, f'#fs-list li[data-path="{fs_path}"]'))
    seen["files"] = len(driver.find_elements(By.CSS_SELECTOR, "#fs-list li"))
    item.click()
    seen["hex"] = wait("the hex view", lambda: driver.find_element(By.ID, "fs-hex").text)
    seen["header"] = driver.find_element(By.ID, "fs-header").text
    wait("the PXI preview", lambda: driver.execute_script("return document.getElementById('fs-preview').naturalWidth") > 0)

    # The other panes: boot screen, log, lineage, kernels, map.
    driver.find_element(By.ID, "tab-boot").click()
    seen["boot_screen_width"] = wait("the boot screen", lambda: driver.execute_script(
        "return document.getElementById('boot-screen').naturalWidth"))
    driver.find_element(By.ID, "tab-log").click()
    seen["log_entries"] = len(wait("log entries", lambda: driver.find_elements(By.CSS_SELECTOR, "#log-list .entry")))
    driver.find_element(By.ID, "tab-lineage").click()
    seen["lineage_nodes"] = len(wait("lineage nodes", lambda: driver.find_elements(By.CSS_SELECTOR, "#lineage-graph g.node")))
    driver.find_element(By.ID, "tab-kernels").click()
    seen["kernel_rows"] = len(wait("kernel rows", lambda: driver.find_elements(By.CSS_SELECTOR, "#kernel-table tr")[1:]))
    driver.find_element(By.ID, "tab-map").click()
    seen["map_tiles"] = int(wait("a map tile", lambda: int(driver.execute_script("return document.body.dataset.mapTiles || 0")) > 0
                                 and driver.execute_script("return document.body.dataset.mapTiles")))
    # Panning left brings tile (-2, 0) into view; it is loaded on demand.
    for _ in range(10):
        driver.find_element(By.TAG_NAME, "body").send_keys("\ue012")  # ArrowLeft
    seen["map_tiles_after_pan"] = int(wait("a second tile after panning", lambda: int(driver.execute_script(
        "return document.body.dataset.mapTiles || 0")) > 1 and driver.execute_script("return document.body.dataset.mapTiles")))
    seen["map_label"] = driver.find_element(By.ID, "map-label").text
    # A tile as a conversation: click it, say something, the model answers,
    # and the history is the tile's note.
    driver.find_element(By.ID, "map-canvas").click()
    seen["chat_tile"] = wait("the clicked tile", lambda: "tile" in driver.find_element(By.ID, "chat-tile").text
                             and driver.find_element(By.ID, "chat-tile").text)
    driver.find_element(By.ID, "chat-text").send_keys("hello tile")
    driver.find_element(By.CSS_SELECTOR, "#chat-form button").click()
    seen["chat"] = wait("the tile's answer", lambda: "assistant" in driver.find_element(By.ID, "chat-log").text
                        and driver.find_element(By.ID, "chat-log").text)
    # The agents panel: the queue, polled.
    driver.find_element(By.ID, "tab-agents").click()
    seen["agent_rows"] = len(wait("task rows", lambda: driver.find_elements(By.CSS_SELECTOR, "#agents-tasks tr")[1:]))
    seen["agents_progress"] = driver.find_element(By.ID, "agents-progress").text
    seen["agent_exchanges"] = len(wait("the chat's exchange", lambda: driver.find_elements(By.CSS_SELECTOR, "#agents-exchanges div")))

    # Q quits the view.
    driver.find_element(By.ID, "tab-vram").click()
    driver.find_element(By.TAG_NAME, "body").send_keys("q")
    wait("quit", lambda: driver.execute_script("return document.body.dataset.quit") == "1")
    seen["quit"] = True
finally:
    driver.quit()
print(json.dumps(seen))
