//go:build !race

package tenantroute

const raceEnabled = false
