"""klamm's web console (src/console, docs/console.md) in a real browser:
headless Chromium from Debian driven by Selenium (chromium-driver). klamm
only: Apache Kafka has no console. Starts klamm with its HTTP listener and
console writes enabled, produces records with confluent-kafka, commits a
group's offsets with a real consumer, then opens every page: finds a record
in the message browser, checks that values holding HTML are shown as text
(and never run), creates a topic and produces a record with the page's
forms, watches the group's lag fall as a consumer catches up and resets it.
Screenshots of each page go to .deps/artifacts/console/.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

import compat

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = compat.DEPS / "artifacts" / "console"

try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

pytestmark = [
    pytest.mark.skipif(compat.BROKER_KIND != "klamm", reason="klamm's web console; Kafka has none"),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER and HAVE_SELENIUM),
                       reason="needs Debian's chromium and chromium-driver and selenium (scripts/test installs them)"),
]

SCRIPT_VALUE = "<script>window.__xss = 1</script>"
IMG_VALUE = '<img src=x onerror="window.__xss = 2">'


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="klamm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Console:
    """The page at `base`, opened in `driver`."""

    def __init__(self, driver, base: str):
        self.driver, self.base = driver, base

    def wait_loaded(self, hash_: str, timeout: float = 10):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, timeout).until(
            lambda d: d.execute_script("return document.body.dataset.loaded") == hash_)

    def open(self, hash_: str):
        self.driver.get(f"{self.base}/{hash_}")
        self.driver.refresh()  # a new hash on the same document does not reload it
        self.wait_loaded(hash_)

    def wait_hash(self, prefix: str, timeout: float = 10):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, timeout).until(
            lambda d: (d.execute_script("return document.body.dataset.loaded") or "").startswith(prefix))

    def css(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def column(self, table: str, col: str) -> list[str]:
        return [td.text for td in self.all(f'#{table} td[data-col="{col}"]')]

    def shot(self, name: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def no_script_ran(self) -> bool:
        return self.driver.execute_script("return window.__xss === undefined")


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def test_console_pages_in_chromium(broker_factory, browser):
    from confluent_kafka import Consumer, Producer
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    port = compat.free_port()
    b = broker_factory({"http.listener": f"http://127.0.0.1:{port}", "console.write.enabled": "true"})
    topic, group = compat.unique("console"), compat.unique("console-group")
    compat.create_topic(b.bootstrap, topic, partitions=2)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(20):
        value = {3: SCRIPT_VALUE, 4: IMG_VALUE}.get(i, f"value-{i}")
        p.produce(topic, key=f"key-{i}", value=value, partition=0, headers=[("source", b"pytest")])
    p.produce(topic, value=b"\xff\x00binary", partition=1)
    assert p.flush(30) == 0
    commit(b.bootstrap, group, topic, {0: 5})

    c = Console(browser, f"http://127.0.0.1:{port}")
    c.open("#/")
    assert c.css("#topic-count").text == "1"
    assert c.css("#group-count").text == "1"
    assert c.css("#mode").text == "writes enabled"
    c.shot("overview")

    c.open("#/topics")
    assert topic in c.column("topics", "name")
    c.shot("topics")

    c.open(f"#/topics/{topic}")
    assert c.column("partitions", "end_offset") == ["20", "1"]
    c.shot("topic")

    # The message browser: from the beginning, at an offset, from the end.
    c.open(f"#/topics/{topic}/messages?partition=0")
    values = c.column("messages", "value")
    assert values[:3] == ["value-0", "value-1", "value-2"]
    # Markup in a value is text on the page, and no script of it ran.
    assert values[3] == SCRIPT_VALUE and values[4] == IMG_VALUE
    assert c.all("#messages script") == [] and c.all("#messages img") == []
    assert c.no_script_ran()
    assert c.column("messages", "headers")[0].strip() == "source=pytest"
    c.shot("messages")
    c.css("#offset").send_keys("12")
    c.css("#go-offset").click()
    c.wait_hash(f"#/topics/{topic}/messages?partition=0&offset=12")
    assert c.column("messages", "offset")[0] == "12"
    c.css("#from-end").click()
    c.wait_hash(f"#/topics/{topic}/messages?partition=0&from=end")
    assert c.column("messages", "offset")[-1] == "19"
    c.open(f"#/topics/{topic}/messages?partition=1")
    assert c.column("messages", "value") == ["base64:/wBiaW5hcnk="]

    # Produce a record with the form; the browser shows it at its offset.
    c.css("#produce-key").send_keys("typed")
    c.css("#produce-value").send_keys("<b>typed in the page</b>")
    c.css("#produce-partition").clear()
    c.css("#produce-partition").send_keys("1")
    c.css("#produce button[type=submit]").click()
    c.wait_hash(f"#/topics/{topic}/messages?partition=1&offset=1")
    assert c.column("messages", "value") == ["<b>typed in the page</b>"]
    assert c.all("#messages b") == []

    # Create a topic with the form.
    made = compat.unique("console-made")
    c.open("#/topics")
    c.css("#new-topic-name").send_keys(made)
    c.css("#new-topic-partitions").clear()
    c.css("#new-topic-partitions").send_keys("3")
    c.css("#create-topic button[type=submit]").click()
    c.wait_hash(f"#/topics/{made}")
    assert c.column("partitions", "partition") == ["0", "1", "2"]

    # The group's lag, then a consumer catches up and the lag falls to 0.
    c.open("#/groups")
    assert c.column("groups", "total_lag") == ["15"]
    c.shot("groups")
    c.open(f"#/groups/{group}")
    assert c.css("#total-lag").text == "15"
    assert c.column("group-offsets", "lag") == ["15"]
    consumer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "client.id": "console-test",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        got = compat.poll_messages(consumer, 17)
        assert len(got) == 17  # partition 0 after the committed 5, and partition 1's 2
        # While it is a member: the page shows it and its assignment.
        c.open(f"#/groups/{group}")
        assert c.css("#group-state").text == "Stable"
        assert c.column("members", "client_id") == ["console-test"]
        assert c.column("members", "assignment") == [f"{topic}: 0,1"]
        c.shot("group")
        # Offsets of a group with members cannot be reset (kafka-consumer-groups' guard).
        c.css("#reset-offsets button[type=submit]").click()
        WebDriverWait(browser, 10).until(lambda d: "NON_EMPTY_GROUP" in c.css("#reset-offsets").text)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    c.open(f"#/groups/{group}")
    assert c.css("#total-lag").text == "0"
    assert c.css("#group-state").text == "Empty"

    # Reset the (empty) group to the earliest offsets with the form.
    c.css("#reset-to").send_keys("earliest")
    c.css("#reset-offsets button[type=submit]").click()
    c.wait_loaded(f"#/groups/{group}")
    WebDriverWait(browser, 10, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        lambda d: c.css("#total-lag").text == "22")
    assert c.no_script_ran()
