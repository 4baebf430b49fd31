"""The MSL simulator's Python half: the front end that checks and translates MSL into C++
(frontend), the host compiler that builds it (compiler), and the driver that ties them to the
executor in metalrt._C (driver.SimDriver)."""
