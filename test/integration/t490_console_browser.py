#!/usr/bin/python3
# The operations console in a real browser (Debian's chromium, driven by
# selenium through chromium-driver).
#
# docs/api.md#views (a role that is not superuser sees only its own
# transactions), docs/api.md (tcc_retry: recorded with who and when; a failed
# transaction resumes), docs/states.md (failed -> confirming -> confirmed), and
# the console's own contract (README "Monitoring"): login checked by
# PostgreSQL, live updates without reload, POSTs need the anti-forgery
# token, no caching.  Screenshots of every page go to
# test/output/console/ (or $TCC_TEST_OUTPUT/console/).

import http.cookiejar
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consolelib import (extra_port, output_dir, password_roles,  # noqa: E402
                        role_dsn, start_console)
from coordlib import branch_urls, system_settings, tp_rule  # noqa: E402
from coordlib import wait_final  # noqa: E402
from tcclib import (diag, done_testing, is_, like, ok, q,  # noqa: E402
                    wait_until)

import psycopg2  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException, WebDriverException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CONSOLE_PORT = extra_port(1)
DRIVER_PORT = extra_port(2)
BASE = "http://127.0.0.1:%d" % CONSOLE_PORT
SHOTS = output_dir("console")
A, B = ("console_alice", "pw-alice-1"), ("console_bob", "pw-bob-2")


def begin(role, prefix, kind):
    """A transaction of role with one branch under prefix, confirmed."""
    conn = psycopg2.connect(role_dsn(*role))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT tcc_begin('1 min', %s, %s)", (kind, prefix))
        gid = cur.fetchone()[0]
        cur.execute("SELECT tcc_branch(%s, %s, %s, %s)",
                    (gid,) + branch_urls(prefix))
        cur.execute("SELECT tcc_finish(%s, true)", (gid,))
    conn.close()
    return gid


def shot(driver, name):
    """Save a screenshot of the page as SHOTS/name.png."""
    path = os.path.join(SHOTS, name + ".png")
    driver.save_screenshot(path)
    diag("screenshot: %s" % path)


def gone(elem):
    """True once elem no longer belongs to the page shown.  Chromium says
    so either as a stale element (what selenium's staleness_of expects) or,
    while the new page is being built, as an inspector error about a node
    that does not belong to the document."""
    try:
        elem.is_enabled()
        return False
    except WebDriverException:
        return True


def click(driver, by, what, accept=False):
    """Click an element that leads to another page (accepting the
    confirmation dialog first if asked) and wait until that page is there."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(by, what).click()
    if accept:
        WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
        driver.switch_to.alert.accept()
    WebDriverWait(driver, 20).until(lambda d: gone(old))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(
        "return document.readyState") == "complete")


def login(driver, role, password):
    """Fill in and send the login form."""
    driver.get(BASE + "/login")
    driver.find_element(By.ID, "role").send_keys(role)
    driver.find_element(By.ID, "password").send_keys(password)
    click(driver, By.ID, "login")


def text_of(driver, elem_id):
    """The text of an element, or None if it is not on the page (or was
    replaced by a live refresh between finding and reading it: the caller
    polls again)."""
    found = driver.find_elements(By.ID, elem_id)
    try:
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def texts_of(driver, css):
    """The texts of the elements css selects, read again if a live refresh
    replaced one between finding and reading it."""
    for _ in range(50):
        try:
            return [e.text for e in driver.find_elements(By.CSS_SELECTOR,
                                                         css)]
        except StaleElementReferenceException:
            continue
    return None


def post_without_token(cookie, path):
    """POST path with the session cookie but no token: the HTTP status."""
    req = urllib.request.Request(BASE + path, method="POST",
                                 data=b"note=forged",
                                 headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


for p in ("/t490/a/1", "/t490/b/1"):
    tp_rule(p + "/confirm", status=200)
tp_rule("/t490/a/1/confirm", status=500, body="bank is down")

console = driver = None
with password_roles(dict([A, B])), system_settings(max_attempts=2):
    try:
        failed = begin(A, "/t490/a/1", "t490")
        other = begin(B, "/t490/b/1", "t490")
        is_(wait_final(failed, 15), "failed", "alice's transaction fails")
        is_(wait_final(other, 15), "confirmed", "bob's is confirmed")

        console = start_console(CONSOLE_PORT, log_dir=SHOTS)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                  "--disable-gpu", "--window-size=1400,1300",
                  "--no-first-run", "--disable-extensions"):
            opts.add_argument(a)
        driver = webdriver.Chrome(
            service=Service("/usr/bin/chromedriver", port=DRIVER_PORT,
                            log_path=os.path.join(SHOTS, "chromedriver.log")),
            options=opts)
        driver.set_page_load_timeout(30)

        # ---- a wrong password is refused by PostgreSQL
        login(driver, A[0], "wrong password")
        like(text_of(driver, "login-error"), r"login refused",
             "a wrong password is refused")
        ok(not driver.find_elements(By.ID, "whoami"), "and no session starts")
        shot(driver, "01-login-refused")

        # ---- alice logs in and sees her failed transaction on the overview
        login(driver, *A)
        is_(text_of(driver, "whoami"), A[0], "alice is logged in")
        is_(text_of(driver, "count-failed"), "1",
            "the overview counts one failed transaction")
        links = texts_of(driver, "#attention a.gid")
        is_(links, [str(failed)], "tcc.attention on the overview lists it")
        ok(wait_until(lambda: text_of(driver, "live-state") == "on", 10),
           "the overview's live updates are connected")
        shot(driver, "02-overview-failed")

        # ---- open it
        click(driver, By.CSS_SELECTOR, "#attention a.gid")
        is_(text_of(driver, "tx-status"), "failed", "its page shows failed")
        calls = texts_of(driver, "#calls tr.call-confirm") or []
        is_(len(calls), 2, "the timeline shows both confirm calls")
        like(calls[0] if calls else "", r"500",
             "with their HTTP status")
        shot(driver, "03-transaction-failed")

        # ---- the participant is healthy again; Retry (confirmed in a dialog)
        tp_rule("/t490/a/1/confirm", status=200)
        click(driver, By.ID, "retry", accept=True)
        like(text_of(driver, "msg-ok"), r"retry recorded",
             "the console says the retry was recorded")
        # a mark in this page: it stays as long as the page is not reloaded
        driver.execute_script("window.t490_mark = 1;")
        ok(wait_until(lambda: text_of(driver, "tx-status") == "confirmed", 20),
           "the page shows confirmed by itself")
        is_(driver.execute_script("return window.t490_mark || 0;"), 1,
            "without a reload")
        ok(wait_until(lambda: "console_alice" in (text_of(driver, "actions")
                                                  or ""), 10),
           "the actions list shows alice's retry")
        shot(driver, "04-transaction-confirmed")
        is_(q("SELECT action, actor::text FROM tcc.actions WHERE gid = %s",
              (failed,)), [("retry", A[0])],
            "tcc.actions records the retry by alice")

        # ---- a second retry on the confirmed transaction: a notice
        click(driver, By.ID, "retry", accept=True)
        like(text_of(driver, "msg-notice"), r"already confirmed, nothing to retry",
             "Retry on a confirmed transaction: the console says so")

        # ---- the list
        click(driver, By.ID, "nav-transactions")
        rows = texts_of(driver, "#transactions a.gid") or []
        ok(str(failed) in rows, "the transaction list shows alice's one")
        ok(str(other) not in rows, "but not bob's")
        shot(driver, "05-transactions-alice")

        # ---- no token, no action; nothing cached
        cookie = "tcc_console=" + driver.get_cookie("tcc_console")["value"]
        is_(post_without_token(cookie, "/tx/%s/resolve" % failed), 403,
            "a POST without the anti-forgery token is refused (403)")
        is_(q("SELECT count(*) FROM tcc.actions WHERE gid = %s", (failed,)),
            [(1,)], "and nothing was done (only the one retry is recorded)")
        req = urllib.request.Request(BASE + "/tx/%s" % failed,
                                     headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=10) as r:
            is_(r.headers.get("Cache-Control"), "no-store",
                "pages are sent with Cache-Control: no-store")
        ok(driver.get_cookie("tcc_console").get("httpOnly"),
           "the session cookie is HttpOnly")

        # ---- bob sees only his own
        click(driver, By.CSS_SELECTOR, "form.logout button")
        ok(wait_until(lambda: driver.current_url.startswith(BASE + "/login")
                      and driver.find_elements(By.ID, "role"), 10),
           "alice logged out")
        is_(post_without_token(cookie, "/tx/%s/retry" % failed), 403,
            "her old session id is no longer accepted")
        login(driver, *B)
        is_(text_of(driver, "whoami"), B[0], "bob is logged in")
        is_(text_of(driver, "count-failed"), "0",
            "bob's overview counts no failed transaction")
        shot(driver, "06-overview-bob")
        driver.get(BASE + "/transactions?kind=t490")
        rows = texts_of(driver, "#transactions a.gid")
        is_(rows, [str(other)], "bob's list shows his transaction only")
        shot(driver, "07-transactions-bob")
        driver.get(BASE + "/tx/%s" % failed)
        ok("Not Found" in driver.page_source,
           "alice's transaction page is not found for bob")
        shot(driver, "08-bob-not-found")
        driver.quit()
        driver = None
        console.stop()

        # ---- sessions expire: a console with 3-second sessions
        console = start_console(CONSOLE_PORT, log_dir=SHOTS,
                                extra=["--session-minutes", "0.05"])
        jar = http.cookiejar.CookieJar()
        web = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar))
        page = web.open(BASE + "/login", timeout=10).read().decode()
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        page = web.open(BASE + "/login", timeout=10, data=urllib.parse.urlencode(
            {"csrf": token, "role": B[0], "password": B[1]}).encode()).read()
        ok(b"<h1>Overview</h1>" in page, "a fresh session shows the overview")

        def expired():
            r = web.open(BASE + "/transactions", timeout=10)
            return r.geturl().startswith(BASE + "/login")
        # each look is a request, which keeps the session: look every 4 s
        ok(wait_until(expired, 20, 4),
           "after --session-minutes without a request the session is gone")
    finally:
        if driver is not None:
            driver.quit()
        if console is not None:
            console.stop()

done_testing()
