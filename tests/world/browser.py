"""Headless Chromium for the console's browser tests, through Selenium and
Debian's chromedriver (packages chromium, chromium-driver,
python3-selenium).

    with Browser() as b:
        b.get("http://127.0.0.1:PORT/")
        b.texts("#queue-deferred .value")   # ["3"]
        b.chart_drawn("sent")              # Chart.js drew pixels
        b.screenshot("docs/console/overview.png")

The browser is isolated: a fresh profile in a temporary directory, no
proxy, and a host resolver that maps every name but 127.0.0.1 to nothing,
so a page that tried to load anything from the internet would fail
visibly (the console must work with no internet). Missing programs make
Browser() raise at once: a browser test never passes by doing nothing.
"""
import base64
import os
import shutil
import tempfile
import time

CHROMIUM = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

# Is the canvas drawn? A Chart.js instance on it, and a pixel that is not
# fully transparent (the console's charts have a transparent background).
_CHART_JS = """
const c = document.getElementById(arguments[0]);
if (!c || typeof Chart === 'undefined' || !Chart.getChart(c)) return false;
const ctx = c.getContext('2d');
const d = ctx.getImageData(0, 0, c.width, c.height).data;
for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
return false;
"""


class BrowserMissing(RuntimeError):
    pass


def _first(paths):
    for p in paths:
        if os.path.exists(p):
            return p
    return None


class Browser:
    """One headless Chromium session; a context manager."""

    def __init__(self, width=1280, height=900, page_timeout=20):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as e:
            raise BrowserMissing(
                "python3-selenium is not installed (scripts/deps)") from e
        chromium, driver = _first(CHROMIUM), _first(CHROMEDRIVER)
        if chromium is None or driver is None:
            raise BrowserMissing(
                "chromium and chromium-driver are needed (scripts/deps): "
                f"chromium={chromium} chromedriver={driver}")
        self.tmp = tempfile.mkdtemp(prefix="browser.")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--no-first-run",
                  "--no-default-browser-check", "--disable-extensions",
                  "--disable-background-networking", "--disable-sync",
                  "--disable-component-update", "--hide-scrollbars",
                  "--force-device-scale-factor=1",
                  f"--window-size={width},{height}",
                  f"--user-data-dir={os.path.join(self.tmp, 'profile')}",
                  "--no-proxy-server", "--proxy-bypass-list=*",
                  "--host-resolver-rules=MAP * ~NOTFOUND, "
                  "EXCLUDE 127.0.0.1, EXCLUDE localhost"):
            opts.add_argument(a)
        service = Service(executable_path=driver,
                          log_output=os.path.join(self.tmp, "driver.log")) \
            if "log_output" in Service.__init__.__code__.co_varnames else \
            Service(executable_path=driver,
                    log_path=os.path.join(self.tmp, "driver.log"))
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except Exception:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(page_timeout)
        self.driver.set_script_timeout(page_timeout)
        self.driver.set_window_size(width, height)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if getattr(self, "driver", None) is not None:
            try:
                self.driver.quit()
            finally:
                self.driver = None
                shutil.rmtree(self.tmp, ignore_errors=True)

    # --- pages ---

    def get(self, url):
        """Load url and wait for the document and its deferred scripts."""
        self.driver.get(url)
        self.wait(lambda: self.driver.execute_script(
            "return document.readyState") == "complete", 20)
        return self

    @property
    def url(self):
        return self.driver.current_url

    @property
    def title(self):
        return self.driver.title

    def source(self):
        return self.driver.page_source

    def find(self, css):
        """The elements matching css (a list, maybe empty)."""
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        """The visible text of the first element matching css, or None."""
        els = self.find(css)
        return els[0].text.strip() if els else None

    def texts(self, css):
        """The visible text of every element matching css."""
        return [e.text.strip() for e in self.find(css)]

    def table(self, css):
        """Rows of a table's body as lists of cell texts."""
        rows = []
        for tr in self.find(css + " tbody tr"):
            from selenium.webdriver.common.by import By
            rows.append([td.text.strip()
                         for td in tr.find_elements(By.CSS_SELECTOR, "td")])
        return rows

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, pred, timeout=10, step=0.1):
        """Poll pred until it is true or timeout seconds pass; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(step)

    def chart_drawn(self, canvas_id, timeout=10):
        """A Chart.js chart exists on canvas_id and has drawn pixels."""
        return bool(self.wait(
            lambda: self.js(_CHART_JS, canvas_id), timeout))

    def console_errors(self):
        """Severe messages of the browser console (CSP violations, script
        errors) since the last call."""
        try:
            logs = self.driver.get_log("browser")
        except Exception:
            return []
        return [e["message"] for e in logs if e.get("level") == "SEVERE"]

    # --- forms ---

    def fill(self, css, value):
        el = self.find(css)[0]
        el.clear()
        el.send_keys(value)

    def click(self, css, navigates=True):
        """Click the first element matching css. A click that navigates
        (a link, a submit button) returns once the new page is loaded:
        the old page's readyState is "complete" too, so waiting for that
        alone returned before the navigation (a race seen on a fresh
        machine)."""
        from selenium.webdriver.common.by import By
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.find(css)[0].click()
        if navigates:
            self.wait(lambda: _stale(old), 20)
        self.wait(lambda: self.driver.execute_script(
            "return document.readyState") == "complete", 20)

    def submit_form(self, form_css, fields=None, button_css=None):
        """Fill fields {name: value} of a form and submit it with its
        button (button_css, else the form's first submit button)."""
        from selenium.webdriver.common.by import By
        form = self.find(form_css)[0]
        for name, value in (fields or {}).items():
            el = form.find_element(By.NAME, name)
            if el.get_attribute("type") == "checkbox":
                if bool(value) != el.is_selected():
                    el.click()
            else:
                el.clear()
                el.send_keys(value)
        btn = (self.find(button_css)[0] if button_css else
               form.find_element(By.CSS_SELECTOR,
                                 "button[type=submit], input[type=submit]"))
        old = self.driver.find_element(By.TAG_NAME, "html")
        btn.click()
        self.wait(lambda: _stale(old), 20)
        self.wait(lambda: self.driver.execute_script(
            "return document.readyState") == "complete", 20)

    def accept_confirms(self):
        """Make window.confirm() answer yes on this page."""
        self.js("window.confirm = function () { return true; };")

    def cookie(self, name):
        c = self.driver.get_cookie(name)
        return c["value"] if c else None

    def screenshot(self, path):
        """A PNG of the whole window at path (directories made)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        png = self.driver.get_screenshot_as_base64()
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))
        return path


def _stale(el):
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        el.tag_name
        return False
    except StaleElementReferenceException:
        return True
