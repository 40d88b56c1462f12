// The Boost.Test entry point linked into every suite executable.
#define BOOST_TEST_MODULE shrink
#include <boost/test/unit_test.hpp>
